package center

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"

	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/suite/os2"
)

// Officers (DESIGN.md §2.1 "Key center master"). An epoch suite's center
// has no master file: its 32-byte root seed (epochs.go expands every
// secret from it) is split T-of-n among named officers with Shamir's
// scheme (circl secretsharing), and each share is sealed in its own file
// under its officer's passphrase. Issuing needs T officers; no file and no
// person holds the master.
//
// The root is a scalar ρ of ristretto255 (circl group.Ristretto255), drawn
// uniformly: ρ = HashToScalar(64 random bytes, DST labelRootScalar). The
// root seed is ρ's canonical 32-byte little-endian encoding (RFC 9496
// §4.4), so every scalar is one seed and back. circl's t is the degree of
// the polynomial: a threshold of T officers is secretsharing.New(·, T−1, ρ),
// and Recover(T−1, ·) needs T shares. Officer i (1-based, in the order
// init named them) holds the share of ID i.
//
// Each share is checked when it is opened against its digest in the
// center file: SHA-256(lp16(labelShareDigest) || system || center ||
// lp16(name) || be16(id) || value), value the share's 32-byte encoding.
// A hash, not a Feldman commitment: Feldman would publish ρ·G, from which
// a quantum computer takes ρ, and with it every epoch's Blom matrix and
// the ML-DSA directory key, the two parts of OS2 meant to outlive one.
// The recovered root is then checked once more against params.json (its
// P = s·g2 and directory key).

// Files of an epoch suite's key center directory, beside ParamsFile.
const (
	CenterFile = "center.json" // officers, threshold and share digests; public
)

// OfficerFile is the name of officer's share file in the center directory.
func OfficerFile(officer string) string { return "officer-" + officer + ".json" }

// Limits on officers.
const (
	MaxOfficers  = 32
	MinThreshold = 2 // one officer alone never holds the master
)

// Labels of the officer scheme (one label, one purpose: STYLE.md 2).
const (
	labelRootScalar  = "orderseal-v2-root-scalar"
	labelShareDigest = "orderseal-v2-officer-share-digest"
	labelShareFile   = "orderseal-v2-officer-share-file"
	shareScheme      = "shamir-ristretto255"
)

// Errors of the officer scheme. Callers test with errors.Is.
var (
	// ErrOfficers is wrapped when too few, unknown or repeated officers are given.
	ErrOfficers = errors.New("officers")
	// ErrForeignShare is wrapped for an officer's file of another key center.
	ErrForeignShare = errors.New("share of another key center")
	// ErrShare is wrapped for a share that opens but is not the one the
	// center file lists (a share file swapped or forged by its officer).
	ErrShare = errors.New("share does not match the center file")
	// ErrSharePassphrase is returned when an officer's share file does not
	// open with the passphrase given (or was altered).
	ErrSharePassphrase = errors.New("wrong passphrase or damaged share file")
	// ErrCenterFile is wrapped by every malformed center file.
	ErrCenterFile = errors.New("invalid center file")
)

// OfficerError names the officer whose share failed.
type OfficerError struct {
	Officer string
	Err     error
}

func (e *OfficerError) Error() string { return "officer " + e.Officer + ": " + e.Err.Error() }
func (e *OfficerError) Unwrap() error { return e.Err }

// Officer is one officer's name and passphrase, as init and the commands
// that open the master take them.
type Officer struct {
	Name       string
	Passphrase []byte
}

// ValidOfficerName: 1–32 characters, a lowercase letter first, then
// lowercase letters, digits and '-' (it names a file).
func ValidOfficerName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// officerList is the center file: who the officers are, how many must
// come, and the digest of each share.
type officerList struct {
	params    keygen.Params // suite and system only
	center    [16]byte      // this split's identifier, bound into each share file
	threshold int
	officers  []officerEntry
}

type officerEntry struct {
	name   string
	id     int
	digest [32]byte
}

type centerWire struct {
	V         int            `json:"v"`
	Suite     string         `json:"suite"`
	System    string         `json:"system"`
	Center    string         `json:"center"`
	Scheme    string         `json:"scheme"`
	Threshold int            `json:"threshold"`
	Officers  []officerWireE `json:"officers"`
}

type officerWireE struct {
	Name   string `json:"name"`
	Share  int    `json:"share"`
	Digest string `json:"digest"`
}

const maxCenterFile = 16 << 10

func (l *officerList) marshal() ([]byte, error) {
	w := centerWire{V: 1, Suite: l.params.Suite, System: l.params.SystemHex(), Center: hex.EncodeToString(l.center[:]),
		Scheme: shareScheme, Threshold: l.threshold}
	for _, o := range l.officers {
		w.Officers = append(w.Officers, officerWireE{Name: o.name, Share: o.id, Digest: hex.EncodeToString(o.digest[:])})
	}
	return json.MarshalIndent(w, "", "  ")
}

func parseOfficerList(data []byte) (*officerList, error) {
	var w centerWire
	if err := strictjson.Decode(data, &w, maxCenterFile); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCenterFile, err)
	}
	if w.V != 1 {
		return nil, fmt.Errorf("%w: %w: v=%d", ErrCenterFile, keygen.ErrVersion, w.V)
	}
	if w.Scheme != shareScheme {
		return nil, fmt.Errorf("%w: scheme %.32q", ErrCenterFile, w.Scheme)
	}
	sys, err := keygen.ParseSystem(w.System)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCenterFile, err)
	}
	l := &officerList{params: keygen.Params{Suite: w.Suite, System: sys}, threshold: w.Threshold}
	if !keygen.ValidSuiteName(w.Suite) {
		return nil, fmt.Errorf("%w: %w", ErrCenterFile, keygen.ErrSuite)
	}
	c, err := hex.DecodeString(w.Center)
	if err != nil || len(c) != 16 || hex.EncodeToString(c) != w.Center {
		return nil, fmt.Errorf("%w: center must be 32 lowercase hex digits", ErrCenterFile)
	}
	copy(l.center[:], c)
	n := len(w.Officers)
	if n < MinThreshold || n > MaxOfficers || w.Threshold < MinThreshold || w.Threshold > n {
		return nil, fmt.Errorf("%w: %d of %d officers (threshold %d to %d officers, at most %d)",
			ErrCenterFile, w.Threshold, n, MinThreshold, n, MaxOfficers)
	}
	seen := map[string]bool{}
	for i, o := range w.Officers {
		if !ValidOfficerName(o.Name) || seen[o.Name] {
			return nil, fmt.Errorf("%w: officer %d: bad or repeated name", ErrCenterFile, i+1)
		}
		seen[o.Name] = true
		if o.Share != i+1 {
			return nil, fmt.Errorf("%w: officer %s holds share %d, want %d", ErrCenterFile, o.Name, o.Share, i+1)
		}
		d, err := hex.DecodeString(o.Digest)
		if err != nil || len(d) != 32 || hex.EncodeToString(d) != o.Digest {
			return nil, fmt.Errorf("%w: officer %s: digest must be 64 lowercase hex digits", ErrCenterFile, o.Name)
		}
		l.officers = append(l.officers, officerEntry{name: o.Name, id: o.Share, digest: [32]byte(d)})
	}
	return l, nil
}

// names lists the officers in order.
func (l *officerList) names() []string {
	out := make([]string, len(l.officers))
	for i, o := range l.officers {
		out[i] = o.name
	}
	return out
}

func (l *officerList) find(name string) (officerEntry, bool) {
	for _, o := range l.officers {
		if o.name == name {
			return o, true
		}
	}
	return officerEntry{}, false
}

func (l *officerList) digest(name string, id int, value []byte) [32]byte {
	h := sha256.New()
	h.Write(wire.LP16(nil, []byte(labelShareDigest)))
	h.Write(l.params.System[:])
	h.Write(l.center[:])
	h.Write(wire.LP16(nil, []byte(name)))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(id)))
	h.Write(value)
	return [32]byte(h.Sum(nil))
}

// shareWire is an officer's share file.
type shareWire struct {
	V         int    `json:"v"`
	Suite     string `json:"suite"`
	System    string `json:"system"`
	Center    string `json:"center"`
	Officer   string `json:"officer"`
	Share     int    `json:"share"`
	Threshold int    `json:"threshold"`
	KDF       KDF    `json:"argon2id"`
	Salt      string `json:"salt"`
	Nonce     string `json:"nonce"`
	CT        string `json:"ct"`
}

const maxShareFile = 4096

func (w *shareWire) aad() []byte {
	b := wire.LP16(nil, []byte(labelShareFile))
	b = wire.LP16(b, []byte(w.Suite))
	b = wire.LP16(b, []byte(w.System))
	b = wire.LP16(b, []byte(w.Center))
	b = wire.LP16(b, []byte(w.Officer))
	b = binary.BigEndian.AppendUint16(b, uint16(w.Share))
	b = binary.BigEndian.AppendUint16(b, uint16(w.Threshold))
	b = binary.BigEndian.AppendUint32(b, w.KDF.Time)
	b = binary.BigEndian.AppendUint32(b, w.KDF.Memory)
	b = append(b, w.KDF.Threads)
	return wire.LP16(b, []byte(w.Salt))
}

// parseShareFile reads an officer's share file strictly (not its secret).
func parseShareFile(data []byte) (*shareWire, *box, error) {
	var w shareWire
	if err := strictjson.Decode(data, &w, maxShareFile); err != nil {
		return nil, nil, err
	}
	if w.V != 1 {
		return nil, nil, fmt.Errorf("%w: v=%d", keygen.ErrVersion, w.V)
	}
	if !keygen.ValidSuiteName(w.Suite) {
		return nil, nil, keygen.ErrSuite
	}
	if _, err := keygen.ParseSystem(w.System); err != nil {
		return nil, nil, err
	}
	if !ValidOfficerName(w.Officer) || w.Share < 1 || w.Share > MaxOfficers ||
		w.Threshold < MinThreshold || w.Threshold > MaxOfficers {
		return nil, nil, errors.New("malformed share file: officer, share or threshold out of range")
	}
	b, err := parseBox(w.KDF, w.Salt, w.Nonce, w.CT, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("share %w", err)
	}
	return &w, b, nil
}

// openShare checks an officer's share file against the center file and
// opens it: the share's value, checked against its digest.
func (l *officerList) openShare(data []byte, o officerEntry, passphrase []byte) (group.Scalar, error) {
	w, b, err := parseShareFile(data)
	if err != nil {
		return nil, err
	}
	if w.System != l.params.SystemHex() || w.Center != hex.EncodeToString(l.center[:]) || w.Suite != l.params.Suite {
		return nil, fmt.Errorf("%w (system %s, center %s)", ErrForeignShare, truncate(w.System, 32), truncate(w.Center, 32))
	}
	if w.Officer != o.name || w.Share != o.id || w.Threshold != l.threshold {
		return nil, fmt.Errorf("%w: the file is officer %s's share %d of %d", ErrShare, w.Officer, w.Share, w.Threshold)
	}
	value, err := b.open(passphrase, w.aad())
	if errors.Is(err, ErrPassphrase) {
		return nil, ErrSharePassphrase
	}
	if err != nil {
		return nil, err
	}
	defer clear(value)
	if d := l.digest(o.name, o.id, value); subtle.ConstantTimeCompare(d[:], o.digest[:]) != 1 {
		return nil, ErrShare
	}
	s := group.Ristretto255.NewScalar()
	if err := s.UnmarshalBinary(value); err != nil {
		return nil, fmt.Errorf("%w: not a canonical scalar", ErrShare)
	}
	return s, nil
}

// drawRoot draws the root scalar from r: uniform, never zero.
func drawRoot(r io.Reader) (group.Scalar, error) {
	var buf [64]byte
	defer clear(buf[:])
	for {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return nil, err
		}
		if s := group.Ristretto255.HashToScalar(buf[:], []byte(labelRootScalar)); !s.IsZero() {
			return s, nil
		}
	}
}

// masterFromRoot is the epoch suite master of the root scalar rho.
func masterFromRoot(params keygen.Params, rho group.Scalar) (*Master, error) {
	root, err := rootSeed(rho)
	if err != nil {
		return nil, err
	}
	defer clear(root[:])
	return EpochMasterFromSeed(params, root)
}

// rootSeed is the root seed of scalar s: its canonical encoding.
func rootSeed(s group.Scalar) ([32]byte, error) {
	b, err := s.MarshalBinary()
	defer clear(b)
	if err != nil || len(b) != 32 {
		return [32]byte{}, fmt.Errorf("root scalar encoding: %v", err)
	}
	return [32]byte(b), nil
}

// checkOfficers validates the officers init is given.
func checkOfficers(officers []Officer, threshold int) error {
	n := len(officers)
	if n < MinThreshold || n > MaxOfficers {
		return fmt.Errorf("%w: need %d to %d officers, got %d", ErrOfficers, MinThreshold, MaxOfficers, n)
	}
	if threshold < MinThreshold || threshold > n {
		return fmt.Errorf("%w: threshold must be between %d and the number of officers (%d), got %d", ErrOfficers, MinThreshold, n, threshold)
	}
	seen := map[string]bool{}
	for _, o := range officers {
		if !ValidOfficerName(o.Name) {
			return fmt.Errorf("%w: bad officer name %.40q (lowercase letters, digits and '-', a letter first, at most 32)", ErrOfficers, o.Name)
		}
		if seen[o.Name] {
			return fmt.Errorf("%w: officer %s named twice", ErrOfficers, o.Name)
		}
		seen[o.Name] = true
		if err := CheckPassphrase(o.Passphrase, o.Name); err != nil {
			return &OfficerError{o.Name, err}
		}
	}
	return nil
}

// InitOfficers creates the key center of an epoch suite in dir: k
// coefficients per row, epochs as opt.Epochs says (nil: monthly, the
// default grace), the root split threshold-of-len(officers) with each
// share sealed under its officer's passphrase. It writes the center file,
// one share file per officer (0600), params.json and the ledger's first
// checkpoint. The Center returned holds the root master.
func InitOfficers(dir string, k int, officers []Officer, threshold int, opt InitOptions) (*Center, error) {
	if err := checkOfficers(officers, threshold); err != nil {
		return nil, err
	}
	suiteName := opt.Suite
	if suiteName == "" {
		suiteName = os2.Name
	}
	if suiteName != os2.Name {
		return nil, fmt.Errorf("%w: officers hold the master of an epoch suite (%s), not of %.64q", keygen.ErrSuite, os2.Name, suiteName)
	}
	ep := keygen.Epochs{Period: keygen.PeriodMonth, Grace: keygen.DefaultGrace}
	if opt.Epochs != nil {
		ep.Period, ep.Grace = opt.Epochs.Period, opt.Epochs.Grace
	}
	kdf := opt.KDF
	if kdf == (KDF{}) {
		kdf = DefaultKDF
	}
	if err := kdf.check(); err != nil {
		return nil, err
	}
	r := opt.Rand
	if r == nil {
		r = rand.Reader
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{MasterFile, CenterFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("%s: %w", dir, ErrCenterExists)
		}
	}

	params := keygen.Params{Suite: suiteName, K: k, Epochs: &ep}
	list := &officerList{threshold: threshold}
	if _, err := io.ReadFull(r, params.System[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r, list.center[:]); err != nil {
		return nil, err
	}
	rho, err := drawRoot(r)
	if err != nil {
		return nil, err
	}
	defer rho.SetUint64(0)
	m, err := masterFromRoot(params, rho)
	if err != nil {
		return nil, err
	}
	list.params = m.params

	// circl's coefficients come from its own crypto/rand for ristretto255,
	// whatever reader it is given.
	shares := secretsharing.New(r, uint(threshold-1), rho).Share(uint(len(officers)))
	files := make([][]byte, len(officers))
	for i, o := range officers {
		value, err := shares[i].Value.MarshalBinary()
		if err != nil {
			m.Destroy()
			return nil, err
		}
		list.officers = append(list.officers, officerEntry{name: o.Name, id: i + 1, digest: list.digest(o.Name, i+1, value)})
		files[i], err = sealShare(list, o, i+1, value, kdf, r)
		clear(value)
		shares[i].Value.SetUint64(0)
		if err != nil {
			m.Destroy()
			return nil, err
		}
	}
	cf, err := list.marshal()
	if err != nil {
		m.Destroy()
		return nil, err
	}
	// The center file is created first, with O_EXCL: of two inits racing
	// on one directory, one fails here before writing any share.
	if err := secfile.WriteNewMode(filepath.Join(dir, CenterFile), append(cf, '\n'), 0o644); err != nil {
		m.Destroy()
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%s: %w", dir, ErrCenterExists)
		}
		return nil, err
	}
	for i, o := range officers {
		if err := secfile.WriteNew(filepath.Join(dir, OfficerFile(o.Name)), append(files[i], '\n')); err != nil {
			m.Destroy()
			return nil, err
		}
	}
	pj, _ := json.MarshalIndent(m.params, "", "  ")
	if err := secfile.WriteNewMode(filepath.Join(dir, ParamsFile), append(pj, '\n'), 0o644); err != nil {
		m.Destroy()
		return nil, err
	}
	c := &Center{dir: dir, master: m, officers: list.names(), now: opt.Now}
	if err := c.initLedger(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// sealShare is the share file of officer o holding share id's value.
func sealShare(l *officerList, o Officer, id int, value []byte, kdf KDF, r io.Reader) ([]byte, error) {
	b, err := newBox(kdf, r)
	if err != nil {
		return nil, err
	}
	w := shareWire{V: 1, Suite: l.params.Suite, System: l.params.SystemHex(), Center: hex.EncodeToString(l.center[:]),
		Officer: o.Name, Share: id, Threshold: l.threshold, KDF: kdf, Salt: b.saltB64(), Nonce: b.nonceB64()}
	if err := b.seal(o.Passphrase, value, w.aad()); err != nil {
		return nil, err
	}
	w.CT = b.ctB64()
	return json.MarshalIndent(w, "", "  ")
}

// readOfficerList reads dir's center file and checks it against params.
func readOfficerList(dir string, params keygen.Params) (*officerList, error) {
	data, err := os.ReadFile(filepath.Join(dir, CenterFile))
	if err != nil {
		return nil, err
	}
	l, err := parseOfficerList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CenterFile), err)
	}
	if l.params.Suite != params.Suite || l.params.System != params.System {
		return nil, fmt.Errorf("%s: %w: center file and params.json are of different systems", dir, keygen.ErrSystem)
	}
	l.params = params
	return l, nil
}

// CenterOfficers reads who the officers of the center in dir are, in
// order, and how many must come to open its master. ok is false for a
// center with a master file (OS1) instead.
func CenterOfficers(dir string) (names []string, threshold int, ok bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, CenterFile)); errors.Is(err, os.ErrNotExist) {
		return nil, 0, false, nil
	}
	p, err := ReadParams(dir)
	if err != nil {
		return nil, 0, false, err
	}
	l, err := readOfficerList(dir, p)
	if err != nil {
		return nil, 0, false, err
	}
	return l.names(), l.threshold, true, nil
}

// OpenOfficers opens the master of the epoch suite's center in dir with the
// officers given: at least the threshold, each an officer of the center,
// none twice. Every officer given is checked (a wrong passphrase, a share
// of another center or one not in the center file names its officer);
// the first threshold of them recover the root.
func OpenOfficers(dir string, officers []Officer) (*Center, error) {
	params, err := ReadParams(dir)
	if err != nil {
		return nil, err
	}
	l, err := readOfficerList(dir, params)
	if err != nil {
		return nil, err
	}
	given := make([]string, len(officers))
	seen := map[string]bool{}
	for i, o := range officers {
		if _, ok := l.find(o.Name); !ok {
			return nil, fmt.Errorf("%w: %.40q is not an officer of this center (officers: %s)", ErrOfficers, o.Name, strings.Join(l.names(), ", "))
		}
		if seen[o.Name] {
			return nil, fmt.Errorf("%w: officer %s given twice", ErrOfficers, o.Name)
		}
		seen[o.Name] = true
		given[i] = o.Name
	}
	if len(officers) < l.threshold {
		g := "none"
		if len(given) > 0 {
			g = strings.Join(given, ", ")
		}
		return nil, fmt.Errorf("%w: opening the master needs %d of the officers %s; given %d: %s",
			ErrOfficers, l.threshold, strings.Join(l.names(), ", "), len(given), g)
	}
	shares := make([]secretsharing.Share, 0, len(officers))
	defer func() {
		for _, s := range shares {
			s.Value.SetUint64(0)
		}
	}()
	for _, o := range officers {
		e, _ := l.find(o.Name)
		path := filepath.Join(dir, OfficerFile(o.Name))
		data, err := secfile.Read(path, maxShareFile)
		if err != nil {
			return nil, &OfficerError{o.Name, err}
		}
		v, err := l.openShare(data, e, o.Passphrase)
		clear(data)
		if err != nil {
			return nil, &OfficerError{o.Name, fmt.Errorf("%s: %w", path, err)}
		}
		shares = append(shares, secretsharing.Share{ID: group.Ristretto255.NewScalar().SetUint64(uint64(e.id)), Value: v})
	}
	rho, err := secretsharing.Recover(uint(l.threshold-1), shares[:l.threshold])
	if err != nil {
		return nil, err
	}
	defer rho.SetUint64(0)
	m, err := masterFromRoot(params, rho)
	if err != nil {
		return nil, err
	}
	if !m.params.Equal(params) {
		m.Destroy()
		return nil, fmt.Errorf("%s: %w: the officers' root does not give params.json's public values", dir, keygen.ErrSystem)
	}
	return &Center{dir: dir, master: m, officers: given}, nil
}
