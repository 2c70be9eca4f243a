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

// Center is an opened key center: parameters plus the decrypted master.
type Center struct {
	dir    string
	master *Master
}

// InitOptions tune Init; the zero value is production's choice.
type InitOptions struct {
	Suite string    // "": keygen.SuiteOS1; the suite every key of the center is for
	KDF   KDF       // zero means DefaultKDF
	Rand  io.Reader // nil means crypto/rand
}

// Init creates a key center in dir with k coefficients per row: the master
// sealed under passphrase, and the public params file.
func Init(dir string, k int, passphrase []byte, opt InitOptions) (*Center, error) {
	if len(passphrase) < 8 {
		return nil, errors.New("passphrase must be at least 8 characters")
	}
	kdf := opt.KDF
	if kdf == (KDF{}) {
		kdf = DefaultKDF
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, MasterFile)); err == nil {
		return nil, fmt.Errorf("%s: %w", dir, ErrCenterExists)
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

// Close forgets the master.
func (c *Center) Close() { c.master.Destroy() }

// Issue computes the party key of one identity.
func (c *Center) Issue(id string) (*keygen.PartyKey, error) { return c.master.Issue(id) }

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
