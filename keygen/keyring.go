package keygen

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

// EpochKeyring is a party's keys across epochs: as a Keyring it is the
// current epoch's; ForEpoch is another epoch's, to open a bundle or check a
// request keyed in it.
type EpochKeyring interface {
	Keyring
	// Epochs lists the epochs held, the current one first.
	Epochs() []string
	ForEpoch(epoch string) (Keyring, error)
}
