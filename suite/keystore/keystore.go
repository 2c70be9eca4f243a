// Package keystore holds a party's keys across epochs (DESIGN.md §2.1):
// under a suite with epochs (OS2) a receiving party keeps, for the current
// and the previous epoch, the party key the key center issued, its own
// X-Wing secret and the directory entry that certifies its public key;
// the cardholder and every party under OS1 have one key file.
//
// A keystore is a directory, one folder an epoch:
//
//	DIR/2026-12/party.key     the key center's party key of the epoch (0600)
//	DIR/2026-12/kem.key       the party's own KEM secret of the epoch (0600)
//	DIR/2026-12/kem.pub.json  the request to sign: identity, epoch, public key
//	DIR/2026-12/entry.json    the key center's signed directory entry
//
// NewEpoch makes the KEM pair and the request, InstallEntry checks and
// stores the signed entry, Prune destroys the KEM secrets whose epoch and
// grace are over: from then on no one, the key center included, opens that
// epoch's sections. Open loads the current and previous epochs; a path to a
// single key file opens as a keystore of that one key, without KEM.
package keystore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/suite/os2"
)

// File names inside an epoch's folder.
const (
	PartyKeyFile = "party.key"
	KEMKeyFile   = "kem.key"
	RequestFile  = "kem.pub.json"
	EntryFile    = "entry.json"
)

// Errors.
var (
	ErrNoKeys     = errors.New("keystore holds no usable key")
	ErrNoEpoch    = errors.New("no key for this epoch")
	ErrIdentity   = errors.New("keys of another identity")
	ErrExists     = errors.New("epoch already has a KEM key")
	ErrEntry      = errors.New("directory entry does not certify this party's key")
	ErrNotEpochal = errors.New("the key's suite has no epochs")
)

// CacheSize is how many peers' pairwise keys each epoch's cache holds.
const CacheSize = 4096

// Keystore is a party's loaded keys. Safe for concurrent use once opened.
type Keystore struct {
	identity string
	params   keygen.Params
	epochs   map[string]*suite.EpochKeys // by epoch ("" for a suite without)
	entries  map[string]*keygen.DirectoryEntry
	order    []string // loaded epochs, oldest first
	kems     []*os2.KEMKey
	now      func() time.Time

	// legacy is an OS1 key the party still accepts bundles and requests
	// of, until legacyUntil (DESIGN.md §2.1 "Transition").
	legacy      *suite.EpochKeys
	legacyUntil time.Time
}

// AcceptLegacy lets an OS2 keystore also open bundles and check requests of
// key, a party key of a suite without epochs (OS1) of the same identity,
// until until. The keystore owns key from then on.
func (s *Keystore) AcceptLegacy(key *keygen.PartyKey, until time.Time) error {
	if key.Params().Epochs != nil || s.params.Epochs == nil {
		key.Destroy()
		return fmt.Errorf("%w: a legacy key is an OS1 key beside an OS2 keystore", ErrNotEpochal)
	}
	if key.Identity() != s.identity {
		key.Destroy()
		return fmt.Errorf("%w: legacy key of %s", ErrIdentity, key.Identity())
	}
	s.legacy, s.legacyUntil = suite.WithKEM(suite.NewKeys(key, CacheSize), nil), until
	return nil
}

// legacyAccepted reports whether the legacy key is accepted now.
func (s *Keystore) legacyAccepted() bool { return s.legacy != nil && s.now().Before(s.legacyUntil) }

// Entries implements keygen.Directory: the party's own directory entries of
// the loaded epochs, oldest first.
func (s *Keystore) Entries() []*keygen.DirectoryEntry {
	var out []*keygen.DirectoryEntry
	for _, e := range s.order {
		if en, ok := s.entries[e]; ok {
			out = append(out, en)
		}
	}
	return out
}

// Open loads path: a key file (a keystore of that one key), or a keystore
// directory, whose current and previous epochs at now it loads (an epoch
// without a usable party key is passed over; one whose KEM secret was
// pruned loads without it). want is the role the identity must have ("" for any).
func Open(path string, want keygen.Role, now time.Time) (*Keystore, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		k, err := suite.LoadKey(path, want, now)
		if err != nil {
			return nil, err
		}
		s := &Keystore{identity: k.Identity(), params: k.Params(), epochs: map[string]*suite.EpochKeys{},
			entries: map[string]*keygen.DirectoryEntry{}, now: time.Now}
		s.epochs[k.Epoch()] = suite.WithKEM(suite.NewKeys(k, CacheSize), nil)
		s.order = []string{k.Epoch()}
		return s, nil
	}
	names, err := epochDirs(path)
	if err != nil {
		return nil, err
	}
	s := &Keystore{epochs: map[string]*suite.EpochKeys{}, entries: map[string]*keygen.DirectoryEntry{}, now: time.Now}
	var skipped []error
	for _, e := range names {
		k, err := suite.LoadKey(filepath.Join(path, e, PartyKeyFile), want, now)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		if k.Epoch() != e {
			k.Destroy()
			skipped = append(skipped, fmt.Errorf("%s: key of epoch %s in folder %s", path, k.Epoch(), e))
			continue
		}
		if s.identity == "" {
			s.identity, s.params = k.Identity(), k.Params()
		} else if k.Identity() != s.identity || !k.Params().Equal(s.params) {
			k.Destroy()
			return nil, fmt.Errorf("%s/%s: %w", path, e, ErrIdentity)
		}
		var dec suite.Decapsulator
		kem, err := loadKEM(filepath.Join(path, e, KEMKeyFile), s.identity, e)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			k.Destroy()
			return nil, err
		default:
			dec = kem
			s.kems = append(s.kems, kem)
		}
		if entry, err := readEntry(filepath.Join(path, e, EntryFile)); err == nil {
			s.entries[e] = entry
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		s.epochs[e] = suite.WithKEM(suite.NewKeys(k, CacheSize), dec)
		s.order = append(s.order, e)
	}
	if len(s.order) == 0 {
		return nil, fmt.Errorf("%s: %w: %w", path, ErrNoKeys, errors.Join(skipped...))
	}
	// Keep the current epoch and the one before it.
	cur := s.currentAt(now)
	i := slices.Index(s.order, cur)
	for _, e := range s.order[:max(0, i-1)] {
		s.epochs[e].Key().Destroy()
		delete(s.epochs, e)
		delete(s.entries, e)
	}
	s.order = s.order[max(0, i-1):]
	return s, nil
}

// epochDirs lists the folders of dir named as epochs, in order.
func epochDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range ents {
		if d.IsDir() && keygen.ValidEpochName(d.Name()) {
			out = append(out, d.Name())
		}
	}
	sort.Strings(out) // epoch names of one period sort in time order
	return out, nil
}

// currentAt is the newest loaded epoch that has begun at now, or the
// oldest if none has.
func (s *Keystore) currentAt(now time.Time) string {
	cur := s.order[0]
	for _, e := range s.order {
		if s.params.Epochs == nil {
			return e
		}
		if start, _, err := s.params.Epochs.Span(e); err == nil && !start.After(now) {
			cur = e
		}
	}
	return cur
}

// Identity is the party's identity.
func (s *Keystore) Identity() string { return s.identity }

// Params are the key center's parameters.
func (s *Keystore) Params() keygen.Params { return s.params }

// SetClock replaces the clock that tells the current epoch (tests).
func (s *Keystore) SetClock(now func() time.Time) { s.now = now }

// Loaded lists the loaded epochs, oldest first.
func (s *Keystore) Loaded() []string { return slices.Clone(s.order) }

// Epochs implements keygen.EpochKeyring: the loaded epochs, the current one
// first, then the others newest first.
func (s *Keystore) Epochs() []string {
	cur := s.currentAt(s.now())
	out := []string{cur}
	for i := len(s.order) - 1; i >= 0; i-- {
		if s.order[i] != cur {
			out = append(out, s.order[i])
		}
	}
	if s.legacyAccepted() {
		out = append(out, "")
	}
	return out
}

// Current is the keyring of the current epoch at now.
func (s *Keystore) Current(now time.Time) *suite.EpochKeys { return s.epochs[s.currentAt(now)] }

// Epoch implements keygen.Keyring: the current epoch.
func (s *Keystore) Epoch() string { return s.currentAt(s.now()) }

// Pairwise implements keygen.Keyring: K(self, peer) in the current epoch.
func (s *Keystore) Pairwise(peer string) (keygen.Pairwise, error) {
	return s.Current(s.now()).Pairwise(peer)
}

// ForEpoch implements keygen.EpochKeyring: epoch "" of an OS2 keystore is
// its legacy OS1 key while accepted, and keygen.ErrNotAccepted otherwise.
func (s *Keystore) ForEpoch(epoch string) (keygen.Keyring, error) {
	if epoch == "" && s.params.Epochs != nil {
		if !s.legacyAccepted() {
			if s.legacy != nil {
				return nil, fmt.Errorf("%w: OS1 was accepted until %s", keygen.ErrNotAccepted, s.legacyUntil.Format(time.DateOnly))
			}
			return nil, fmt.Errorf("%w: this party accepts only %s", keygen.ErrNotAccepted, s.params.Suite)
		}
		return s.legacy, nil
	}
	k, err := s.Keyring(epoch)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Keyring is the keyring of epoch ("" under a suite without epochs).
func (s *Keystore) Keyring(epoch string) (*suite.EpochKeys, error) {
	k, ok := s.epochs[epoch]
	if !ok {
		return nil, fmt.Errorf("%w: %.16q (this party holds %v)", ErrNoEpoch, epoch, s.order)
	}
	return k, nil
}

// Entry is the party's own directory entry of epoch, if installed.
func (s *Keystore) Entry(epoch string) (*keygen.DirectoryEntry, bool) {
	e, ok := s.entries[epoch]
	return e, ok
}

// CacheStats sums the pairwise key caches' hits and misses over every
// loaded epoch (keygen.Cache.Stats), for the daemons' metrics.
func (s *Keystore) CacheStats() (hits, misses uint64) {
	add := func(c *keygen.Cache) {
		h, m := c.Stats()
		hits, misses = hits+h, misses+m
	}
	for _, k := range s.epochs {
		add(k.Cache)
	}
	if s.legacy != nil {
		add(s.legacy.Cache)
	}
	return hits, misses
}

// Close destroys every loaded secret.
func (s *Keystore) Close() {
	for _, k := range s.epochs {
		k.Key().Destroy()
		k.Purge()
	}
	for _, k := range s.kems {
		k.Destroy()
	}
	if s.legacy != nil {
		s.legacy.Key().Destroy()
	}
}

// kemWire is the KEM key file.
type kemWire struct {
	V        int    `json:"v"`
	Suite    string `json:"suite"`
	Identity string `json:"identity"`
	Epoch    string `json:"epoch"`
	Seed     string `json:"seed"`
}

// Request is what a party hands the key center to sign (kem.pub.json).
type Request struct {
	V         int    `json:"v"`
	Identity  string `json:"identity"`
	Epoch     string `json:"epoch"`
	PublicKey string `json:"public_key"` // base64url of the X-Wing public key
}

// ParseRequest reads a signing request strictly.
func ParseRequest(data []byte) (*Request, []byte, error) {
	var r Request
	if err := strictjson.Decode(data, &r, 4096); err != nil {
		return nil, nil, err
	}
	if r.V != 1 {
		return nil, nil, fmt.Errorf("request v=%d", r.V)
	}
	if err := keygen.ValidateIdentity(r.Identity); err != nil {
		return nil, nil, err
	}
	if !keygen.ValidEpochName(r.Epoch) {
		return nil, nil, fmt.Errorf("%w: %.16q", keygen.ErrEpoch, r.Epoch)
	}
	pk, err := wire.UnB64Len(r.PublicKey, os2.KEMPublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("public_key: %w", err)
	}
	return &r, pk, nil
}

func loadKEM(path, identity, epoch string) (*os2.KEMKey, error) {
	data, err := secfile.Read(path, 4096)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	var w kemWire
	if err := strictjson.Decode(data, &w, 4096); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if w.V != 1 || w.Suite != os2.Name || w.Identity != identity || w.Epoch != epoch {
		return nil, fmt.Errorf("%s: KEM key of %s %s, want %s %s", path, w.Identity, w.Epoch, identity, epoch)
	}
	seed, err := wire.UnB64Len(w.Seed, os2.KEMSecretSize)
	if err != nil {
		return nil, fmt.Errorf("%s: seed: %w", path, err)
	}
	defer clear(seed)
	return os2.KEMKeyFromSeed(seed)
}

func readEntry(path string) (*keygen.DirectoryEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e keygen.DirectoryEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &e, nil
}

// NewEpoch installs key (the key center's party key of an epoch) into the
// keystore dir, draws the party's KEM key pair of that epoch and writes the
// request for the key center to sign. It returns the request's path. An
// epoch that already has a KEM key is refused: a pair is made once.
func NewEpoch(dir string, key *keygen.PartyKey, rand io.Reader) (string, error) {
	if key.Params().Epochs == nil {
		return "", fmt.Errorf("%w: %s", ErrNotEpochal, key.Params().Suite)
	}
	if ids, err := epochDirs(dir); err == nil {
		for _, e := range ids {
			if k, err := keygen.LoadPartyKey(filepath.Join(dir, e, PartyKeyFile)); err == nil {
				same := k.Identity() == key.Identity() && k.Params().Equal(key.Params())
				k.Destroy()
				if !same {
					return "", fmt.Errorf("%s: %w: it holds %s's keys", dir, ErrIdentity, k.Identity())
				}
			}
		}
	}
	ed := filepath.Join(dir, key.Epoch())
	if err := os.MkdirAll(ed, 0o700); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(ed, KEMKeyFile)); err == nil {
		return "", fmt.Errorf("%s: %w", ed, ErrExists)
	}
	if err := key.WriteFile(filepath.Join(ed, PartyKeyFile)); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	kem, err := os2.NewKEMKey(rand)
	if err != nil {
		return "", err
	}
	defer kem.Destroy()
	seed := kem.Seed()
	defer clear(seed)
	data, err := json.Marshal(kemWire{V: 1, Suite: os2.Name, Identity: key.Identity(), Epoch: key.Epoch(), Seed: wire.B64(seed)})
	if err != nil {
		return "", err
	}
	defer clear(data)
	if err := secfile.WriteNew(filepath.Join(ed, KEMKeyFile), append(data, '\n')); err != nil {
		return "", err
	}
	req, _ := json.MarshalIndent(Request{V: 1, Identity: key.Identity(), Epoch: key.Epoch(), PublicKey: wire.B64(kem.PublicKey())}, "", "  ")
	path := filepath.Join(ed, RequestFile)
	if err := os.WriteFile(path, append(req, '\n'), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// InstallEntry checks a signed directory entry against the keystore (its
// identity, epoch and the KEM key the party holds for that epoch) and the
// key center's signature at now, and stores it.
func InstallEntry(dir string, data []byte, now time.Time) (*keygen.DirectoryEntry, error) {
	var e keygen.DirectoryEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	ed := filepath.Join(dir, e.Epoch)
	key, err := keygen.LoadPartyKey(filepath.Join(ed, PartyKeyFile))
	if err != nil {
		return nil, err
	}
	defer key.Destroy()
	if key.Identity() != e.Identity || key.Epoch() != e.Epoch {
		return nil, fmt.Errorf("%w: entry of %s %s, keystore of %s %s", ErrEntry, e.Identity, e.Epoch, key.Identity(), key.Epoch())
	}
	kem, err := loadKEM(filepath.Join(ed, KEMKeyFile), key.Identity(), key.Epoch())
	if err != nil {
		return nil, err
	}
	defer kem.Destroy()
	if !slices.Equal(kem.PublicKey(), e.PublicKey) {
		return nil, fmt.Errorf("%w: it certifies another public key", ErrEntry)
	}
	st, err := suite.For(key)
	if err != nil {
		return nil, err
	}
	if err := st.VerifyEntry(key.Params(), &e, now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEntry, err)
	}
	out, _ := json.MarshalIndent(&e, "", "  ")
	if err := secfile.Replace(filepath.Join(ed, EntryFile), append(out, '\n')); err != nil {
		return nil, err
	}
	return &e, nil
}

// Prune destroys the KEM secret of every epoch of dir whose end plus grace
// is past at now: the file is overwritten with zeros, synced and removed.
// It returns the epochs pruned.
func Prune(dir string, now time.Time) ([]string, error) {
	names, err := epochDirs(dir)
	if err != nil {
		return nil, err
	}
	var pruned []string
	for _, e := range names {
		path := filepath.Join(dir, e, KEMKeyFile)
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		key, err := keygen.LoadPartyKey(filepath.Join(dir, e, PartyKeyFile))
		if err != nil {
			return pruned, err
		}
		ep := key.Params().Epochs
		key.Destroy()
		if ep == nil || ep.Usable(e, now) == nil {
			continue
		}
		if err := shred(path, fi.Size()); err != nil {
			return pruned, err
		}
		pruned = append(pruned, e)
	}
	return pruned, nil
}

// shred overwrites a file with zeros, syncs it and removes it.
func shred(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Remove(path)
}

var (
	_ keygen.EpochKeyring = (*Keystore)(nil)
	_ keygen.Directory    = (*Keystore)(nil)
)
