package center

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/internal/secfile"
	"orderseal/keygen"
)

// Files of a key center directory.
const (
	MasterFile = "master.json" // the encrypted seed, 0600
	ParamsFile = "params.json" // public parameters
)

// ErrCenterExists is returned by Init for a directory that already holds a master.
var ErrCenterExists = errors.New("key center already initialised")

// Center is an opened key center: parameters plus the decrypted master
// (for an epoch suite, the root master the officers opened, or the master
// of one epoch: ForEpoch).
type Center struct {
	dir    string
	master *Master
	// Under an epoch suite: the officers who opened the master, as the
	// ledger records them, and the ledger's clock (nil: time.Now).
	officers []string
	now      func() time.Time
	root     *Master // of an epoch's center: the root it came from, closed with it
	// The ledger after the last command that appended to it.
	ledgerLines uint64
	ledgerHead  string
}

// InitOptions tune Init and InitOfficers; the zero value is production's choice.
type InitOptions struct {
	Suite string    // "": keygen.SuiteOS1 for Init, OS2 for InitOfficers; the suite every key of the center is for
	KDF   KDF       // zero means DefaultKDF
	Rand  io.Reader // nil means crypto/rand
	// InitOfficers only: the epochs' period and grace (nil: monthly, with
	// keygen.DefaultGrace; the public values are the master's), and the
	// ledger's clock (nil: time.Now).
	Epochs *keygen.Epochs
	Now    func() time.Time
}

// Init creates a key center in dir with k coefficients per row: the master
// sealed under passphrase, and the public params file.
func Init(dir string, k int, passphrase []byte, opt InitOptions) (*Center, error) {
	if err := CheckPassphrase(passphrase); err != nil {
		return nil, err
	}
	kdf := opt.KDF
	if kdf == (KDF{}) {
		kdf = DefaultKDF
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{MasterFile, CenterFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("%s: %w", dir, ErrCenterExists)
		}
	}
	m, err := NewMaster(k, opt.Rand)
	if err != nil {
		return nil, err
	}
	if opt.Suite != "" {
		if !keygen.ValidSuiteName(opt.Suite) {
			return nil, fmt.Errorf("%w: %.64q", keygen.ErrSuite, opt.Suite)
		}
		m.params.Suite = opt.Suite
	}
	sealed, err := m.Seal(passphrase, kdf, opt.Rand)
	if err != nil {
		return nil, err
	}
	if err := secfile.WriteNew(filepath.Join(dir, MasterFile), append(sealed, '\n')); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%s: %w", dir, ErrCenterExists)
		}
		return nil, err
	}
	pj, _ := json.MarshalIndent(m.params, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, ParamsFile), append(pj, '\n'), 0o644); err != nil {
		return nil, err
	}
	return &Center{dir: dir, master: m}, nil
}

// OpenCenter decrypts the master of dir and checks it against the params file.
func OpenCenter(dir string, passphrase []byte) (*Center, error) {
	data, err := secfile.Read(filepath.Join(dir, MasterFile), 64<<10)
	if err != nil {
		return nil, err
	}
	m, err := OpenMaster(data, passphrase)
	if err != nil {
		return nil, err
	}
	p, err := ReadParams(dir)
	if err != nil {
		return nil, err
	}
	if !p.Equal(m.params) {
		return nil, fmt.Errorf("%s: %w: params file does not match the master", dir, keygen.ErrSystem)
	}
	return &Center{dir: dir, master: m}, nil
}

// ReadParams reads the public params file of a key center directory.
func ReadParams(dir string) (keygen.Params, error) {
	data, err := os.ReadFile(filepath.Join(dir, ParamsFile))
	if err != nil {
		return keygen.Params{}, err
	}
	return keygen.ParseParams(data)
}

// Params returns the center's public parameters.
func (c *Center) Params() keygen.Params { return c.master.params }

// Close forgets the master (and the root of an epoch's center).
func (c *Center) Close() {
	c.master.Destroy()
	if c.root != nil {
		c.root.Destroy()
	}
}

// Issue computes the party key of one identity (in memory; IssueFile
// writes it and records it in the ledger).
func (c *Center) Issue(id string) (*keygen.PartyKey, error) { return c.master.Issue(id) }

// Officers are the officers who opened the master (nil for OS1).
func (c *Center) Officers() []string { return append([]string(nil), c.officers...) }

// Epoch is the epoch the center issues for ("" for OS1 and the root).
func (c *Center) Epoch() string { return c.master.Epoch() }

// ForEpoch turns the root center of an epoch suite into the center that
// issues keys of epoch. It takes over the root: Close the center it
// returns, not c.
func (c *Center) ForEpoch(epoch string) (*Center, error) {
	if c.root != nil {
		return nil, fmt.Errorf("already the center of epoch %s", c.master.Epoch())
	}
	m, err := c.master.ForEpoch(epoch)
	if err != nil {
		return nil, err
	}
	return &Center{dir: c.dir, master: m, root: c.master, officers: c.officers, now: c.now}, nil
}

func (c *Center) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// logged says whether the center records what it issues in a ledger:
// under an epoch suite, whose master signs the checkpoints.
func (c *Center) logged() bool { return c.master.secrets != nil }

// IssueFile issues id's key into a new file at path (0600) and, under an
// epoch suite, records it in the ledger: the ledger is checked first (a
// broken ledger issues nothing), the line and its checkpoint are written
// once the key file is.
func (c *Center) IssueFile(id, path string) error {
	var lw *ledgerWriter
	if c.logged() {
		var err error
		if lw, err = c.openLedger(false); err != nil {
			return err
		}
	}
	err := c.issueFile(id, path, lw)
	if lw != nil {
		if cerr := lw.commit(); err == nil && cerr != nil {
			err = fmt.Errorf("%s written, but not recorded: %w", path, cerr)
		}
	}
	return err
}

func (c *Center) issueFile(id, path string, lw *ledgerWriter) error {
	k, err := c.master.Issue(id)
	if err != nil {
		return err
	}
	defer k.Destroy()
	if err := k.WriteFile(path); err != nil {
		return err
	}
	if lw != nil {
		return lw.issued(k)
	}
	return nil
}

// IssueBatchLogged is IssueBatch that, under an epoch suite, records
// each key written in the ledger (one line per identity, buffered, the
// checkpoint and one sync at the end). A ledger that fails to open
// issues nothing; one that fails to record is the error.
func (c *Center) IssueBatchLogged(ctx context.Context, ids []string, outDir string, done func(BatchResult)) ([]BatchResult, error) {
	if !c.logged() {
		return c.IssueBatch(ctx, ids, outDir, done), nil
	}
	lw, err := c.openLedger(false)
	if err != nil {
		return nil, err
	}
	results := c.issueBatch(ctx, ids, outDir, done, lw)
	if err := lw.commit(); err != nil {
		return results, fmt.Errorf("keys written into %s, but not all recorded: %w", outDir, err)
	}
	return results, nil
}

// SignEntry certifies a receiving party's KEM public key for epoch until
// notAfter (Master.SignEntry) and records the entry in the ledger.
func (c *Center) SignEntry(identity, epoch string, publicKey []byte, notAfter time.Time) (*keygen.DirectoryEntry, error) {
	lw, err := c.openLedger(false)
	if err != nil {
		return nil, err
	}
	e, err := c.master.SignEntry(identity, epoch, publicKey, notAfter)
	if err == nil {
		err = lw.signed(e)
	}
	if cerr := lw.commit(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// BatchResult reports one identity of a batch.
type BatchResult struct {
	Identity string
	Path     string
	Err      error
}

// IssueBatch issues every identity into outDir. Identities are computed in
// groups that share the work (batch.go), one group per core at a time, and
// the key files are written by a pool of writers, so that waiting for the
// disk (each file is synced, secfile.WriteNew) does not hold up the
// arithmetic. An identity that fails (bad syntax, file exists) is reported
// and the batch goes on. done is called once per identity, from any
// goroutine. A cancelled ctx stops handing out work: identities not yet
// started fail with ctx.Err(), those under way finish.
func (c *Center) IssueBatch(ctx context.Context, ids []string, outDir string, done func(BatchResult)) []BatchResult {
	return c.issueBatch(ctx, ids, outDir, done, nil)
}

// issueBatch is IssueBatch, recording each key written in lw if not nil.
func (c *Center) issueBatch(ctx context.Context, ids []string, outDir string, done func(BatchResult), lw *ledgerWriter) []BatchResult {
	m := c.master
	m.prepareBatch() // once, before the workers share it
	results := make([]BatchResult, len(ids))
	finish := func(i int) {
		if done != nil {
			done(results[i])
		}
	}

	type group struct {
		idx []int
		xs  []fp.Elt
	}
	type issued struct {
		i   int
		key *keygen.PartyKey
	}
	groups := make(chan group)
	keys := make(chan issued, 2*batchGroup)

	var writers sync.WaitGroup
	for w := 0; w < batchWriters; w++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for it := range keys {
				results[it.i].Err = it.key.WriteFile(results[it.i].Path)
				if results[it.i].Err == nil && lw != nil {
					lw.issued(it.key) // its error is commit's
				}
				it.key.Destroy()
				finish(it.i)
			}
		}()
	}
	var workers sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for g := range groups {
				rows := m.rowsMany(g.xs)
				for j, i := range g.idx {
					key, err := m.newKey(ids[i], rows[j])
					if err != nil {
						panic(err) // the identity passed prepare, the row is k canonical elements
					}
					keys <- issued{i, key}
				}
			}
		}()
	}

	var g group
	send := func() bool {
		if len(g.idx) == 0 {
			return true
		}
		if ctx.Err() == nil {
			select {
			case groups <- g:
				g = group{}
				return true
			case <-ctx.Done():
			}
		}
		for _, i := range g.idx {
			results[i].Err = ctx.Err()
			finish(i)
		}
		g = group{}
		return false
	}
	for i, id := range ids {
		results[i] = BatchResult{Identity: id}
		if !c.prepare(&results[i], outDir) {
			finish(i)
			continue
		}
		x, err := m.point(id)
		if err != nil {
			results[i].Err = err
			finish(i)
			continue
		}
		g.idx = append(g.idx, i)
		g.xs = append(g.xs, x)
		if len(g.idx) == batchGroup && !send() {
			for j := i + 1; j < len(ids); j++ {
				results[j] = BatchResult{Identity: ids[j], Err: ctx.Err()}
				finish(j)
			}
			break
		}
	}
	send()
	close(groups)
	workers.Wait()
	close(keys)
	writers.Wait()
	return results
}

// batchWriters is how many key files IssueBatch writes at once: enough
// for the disk's syncs to overlap, each writer mostly waiting on one.
const batchWriters = 16

// prepare checks an identity of a batch and names its key file; false
// means r.Err says why it will not be issued.
func (c *Center) prepare(r *BatchResult, outDir string) bool {
	if err := keygen.ValidateIdentity(r.Identity); err != nil {
		r.Err = err
		return false
	}
	r.Path = filepath.Join(outDir, keygen.KeyFileName(r.Identity))
	if _, err := os.Lstat(r.Path); err == nil {
		r.Err = fmt.Errorf("%s: %w", r.Path, os.ErrExist)
		return false
	}
	return true
}
