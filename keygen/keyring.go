package keygen

import "errors"

// Keyring is what a party signs, seals and opens with: its identity, its
// key center's parameters, its key's epoch ("" under a suite without
// epochs) and its pairwise keys. *Cache is one (suite.NewKeys); a party's
// keys across epochs (suite/keystore) is an EpochKeyring.
type Keyring interface {
	Identity() string
	Params() Params
	Epoch() string
	Pairwise(peer string) (Pairwise, error)
}

// ErrNotAccepted is returned by an EpochKeyring asked for the keys of a
// suite it holds but does not accept now (OS1 past its -accept-os1-until).
var ErrNotAccepted = errors.New("suite not accepted by this party")

// Directory is a keyring that holds the party's own directory entries
// (suite/keystore under OS2), for the party to publish.
type Directory interface {
	Entries() []*DirectoryEntry
}

// EpochKeyring is a party's keys across epochs: as a Keyring it is the
// current epoch's; ForEpoch is another epoch's, to open a bundle or check a
// request keyed in it.
type EpochKeyring interface {
	Keyring
	// Epochs lists the epochs held, the current one first; "" stands for
	// a suite without epochs (OS1) the party still accepts.
	Epochs() []string
	// ForEpoch is the keyring of epoch ("": of the accepted suite without
	// epochs, or an error wrapping ErrNotAccepted).
	ForEpoch(epoch string) (Keyring, error)
}
