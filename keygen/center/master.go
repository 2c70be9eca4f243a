package center

import (
	"crypto/rand"
	"crypto/sha3"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/keygen/internal/field"
)

// ErrPassphrase is returned when the master file does not open with the
// passphrase given (or was altered).
var ErrPassphrase = errors.New("wrong passphrase or damaged master file")

// Master is the key center's secret: a 32-byte seed from which the symmetric
// matrix D is expanded. It never leaves the center in clear.
type Master struct {
	params keygen.Params
	seed   [32]byte
	once   sync.Once
	tri    []fp.Elt // upper triangle of D, row-major, expanded once on first use

	planOnce sync.Once
	plan     *plan // D prepared for batch issuance (batch.go), built on first use
	rnsOnce  sync.Once
	rns      *rnsPlan // D modulo small primes, for batch issuance with AVX2 (rns.go)

	// Under an epoch suite (epochs.go): the secrets expanded from the root
	// seed, shared by the root master and its epochs' masters, and for an
	// epoch's master its epoch (seed is then the epoch's Blom seed).
	secrets *epochSecrets
	epoch   string
}

// NewMaster creates fresh parameters with k coefficients per row and a fresh seed.
func NewMaster(k int, r io.Reader) (*Master, error) {
	if r == nil {
		r = rand.Reader
	}
	m := &Master{params: keygen.Params{Suite: keygen.SuiteOS1, K: k}}
	if err := m.params.Check(); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r, m.params.System[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r, m.seed[:]); err != nil {
		return nil, err
	}
	return m, nil
}

// MasterFromSeed rebuilds a master from its parts (known-answer tests, recovery).
func MasterFromSeed(params keygen.Params, seed [32]byte) (*Master, error) {
	if err := params.Check(); err != nil {
		return nil, err
	}
	return &Master{params: params, seed: seed}, nil
}

// Params returns the public parameters.
func (m *Master) Params() keygen.Params { return m.params }

// Destroy zeroes the seed and the expanded matrix.
func (m *Master) Destroy() {
	m.seed = [32]byte{}
	if m.secrets != nil && m.epoch == "" {
		m.secrets.sok.SetUint64(0)
		m.secrets.dsa = nil
	}
	clear(m.tri)
	m.tri = nil
	if m.plan != nil {
		m.plan.root.destroy()
		m.plan = nil
	}
	if m.rns != nil {
		m.rns.destroy()
		m.rns = nil
	}
}

// expand fills the upper triangle of D. Row a of the triangle comes from
// SHAKE256("orderseal-v1-master" || seed || be32(k) || be32(a)); each element
// is 32 bytes little-endian with bit 255 cleared, redrawn while ≥ p.
func (m *Master) expand() { m.once.Do(m.expandOnce) }

func (m *Master) expandOnce() {
	k := m.params.K
	tri := make([]fp.Elt, k*(k+1)/2)
	var hdr [19 + 32 + 8]byte
	copy(hdr[:], "orderseal-v1-master")
	copy(hdr[19:], m.seed[:])
	binary.BigEndian.PutUint32(hdr[51:], uint32(k))
	idx := 0
	for a := 0; a < k; a++ {
		binary.BigEndian.PutUint32(hdr[55:], uint32(a))
		x := sha3.NewSHAKE256()
		x.Write(hdr[:])
		for b := a; b < k; b++ {
			e := &tri[idx]
			for {
				x.Read(e[:])
				e[31] &= 0x7f
				if field.IsCanonical(e) {
					break
				}
			}
			idx++
		}
	}
	clear(hdr[:])
	m.tri = tri
}

// entry returns D[a][b].
func (m *Master) entry(a, b int) fp.Elt {
	m.expand()
	if a > b {
		a, b = b, a
	}
	k := m.params.K
	return m.tri[a*k-a*(a-1)/2+(b-a)]
}

// Issue computes the party key for id: r = D · v(x(id)).
func (m *Master) Issue(id string) (*keygen.PartyKey, error) {
	x, err := m.point(id)
	if err != nil {
		return nil, err
	}
	m.expand()
	return m.newKey(id, m.row(&x))
}

// row evaluates D · (1, x, …, x^(k−1)) walking the upper triangle once.
func (m *Master) row(x *fp.Elt) []fp.Elt {
	k := m.params.K
	v := make([]fp.Elt, k)
	fp.SetOne(&v[0])
	for i := 1; i < k; i++ {
		fp.Mul(&v[i], &v[i-1], x)
	}
	r := make([]fp.Elt, k)
	var t fp.Elt
	idx := 0
	for a := 0; a < k; a++ {
		fp.Mul(&t, &m.tri[idx], &v[a])
		fp.Add(&r[a], &r[a], &t)
		idx++
		for b := a + 1; b < k; b++ {
			d := &m.tri[idx]
			fp.Mul(&t, d, &v[b])
			fp.Add(&r[a], &r[a], &t)
			fp.Mul(&t, d, &v[a])
			fp.Add(&r[b], &r[b], &t)
			idx++
		}
	}
	for i := range r {
		fp.Modp(&r[i])
	}
	clear(v)
	return r
}

// KDF is the argon2id cost that protects the master file.
type KDF struct {
	Time    uint32 `json:"t"`
	Memory  uint32 `json:"m"` // KiB
	Threads uint8  `json:"p"`
}

// DefaultKDF follows RFC 9106's second recommended option (64 MiB, 3 passes).
var DefaultKDF = KDF{Time: 3, Memory: 64 * 1024, Threads: 2}

func (k KDF) check() error {
	if k.Time < 1 || k.Time > 16 || k.Memory < 8*1024 || k.Memory > 1<<20 || k.Threads < 1 {
		return fmt.Errorf("%w: argon2id cost out of range", keygen.ErrParams)
	}
	return nil
}

type masterWire struct {
	V      int    `json:"v"`
	Suite  string `json:"suite"`
	System string `json:"system"`
	K      int    `json:"k"`
	KDF    KDF    `json:"argon2id"`
	Salt   string `json:"salt"`
	Nonce  string `json:"nonce"`
	CT     string `json:"ct"`
}

func (w *masterWire) aad() []byte {
	b := []byte("orderseal-v1-master-file")
	b = wire.LP16(b, []byte(w.Suite))
	b = wire.LP16(b, []byte(w.System))
	b = binary.BigEndian.AppendUint32(b, uint32(w.K))
	b = binary.BigEndian.AppendUint32(b, w.KDF.Time)
	b = binary.BigEndian.AppendUint32(b, w.KDF.Memory)
	b = append(b, w.KDF.Threads)
	return wire.LP16(b, []byte(w.Salt))
}

// masterParams checks the public fields of a master file as keygen checks
// those of a params file.
func masterParams(w *masterWire) (keygen.Params, error) {
	var p keygen.Params
	if w.V != 1 {
		return p, fmt.Errorf("%w: v=%d", keygen.ErrVersion, w.V)
	}
	sys, err := keygen.ParseSystem(w.System)
	if err != nil {
		return p, err
	}
	p = keygen.Params{Suite: w.Suite, System: sys, K: w.K}
	return p, p.Check()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Seal encrypts the master under an argon2id key derived from passphrase;
// the result is the master file's contents.
func (m *Master) Seal(passphrase []byte, kdf KDF, r io.Reader) ([]byte, error) {
	b, err := newBox(kdf, r)
	if err != nil {
		return nil, err
	}
	w := masterWire{V: 1, Suite: m.params.Suite, System: m.params.SystemHex(), K: m.params.K, KDF: kdf,
		Salt: b.saltB64(), Nonce: b.nonceB64()}
	if err := b.seal(passphrase, m.seed[:], w.aad()); err != nil {
		return nil, err
	}
	w.CT = b.ctB64()
	return json.MarshalIndent(w, "", "  ")
}

// OpenMaster decrypts a master file.
func OpenMaster(data, passphrase []byte) (*Master, error) {
	var w masterWire
	if err := strictjson.Decode(data, &w, 4096); err != nil {
		return nil, err
	}
	params, err := masterParams(&w)
	if err != nil {
		return nil, err
	}
	b, err := parseBox(w.KDF, w.Salt, w.Nonce, w.CT, 32)
	if err != nil {
		return nil, fmt.Errorf("master %w", err)
	}
	seed, err := b.open(passphrase, w.aad())
	if err != nil {
		return nil, err
	}
	m := &Master{params: params}
	copy(m.seed[:], seed)
	clear(seed)
	return m, nil
}
