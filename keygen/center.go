package keygen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"orderseal/internal/secfile"
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
	KDF  KDF       // zero means DefaultKDF
	Rand io.Reader // nil means crypto/rand
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
		return nil, fmt.Errorf("%s: %w: params file does not match the master", dir, ErrSystem)
	}
	return &Center{dir: dir, master: m}, nil
}

// ReadParams reads the public params file of a key center directory.
func ReadParams(dir string) (Params, error) {
	data, err := os.ReadFile(filepath.Join(dir, ParamsFile))
	if err != nil {
		return Params{}, err
	}
	return ParseParams(data)
}

// Params returns the center's public parameters.
func (c *Center) Params() Params { return c.master.params }

// Close forgets the master.
func (c *Center) Close() { c.master.Destroy() }

// Issue computes the party key of one identity.
func (c *Center) Issue(id string) (*PartyKey, error) { return c.master.Issue(id) }

// KeyFileName is the file a batch writes for id: "role.name.key".
func KeyFileName(id string) string { return strings.Replace(id, ":", ".", 1) + ".key" }

// BatchResult reports one identity of a batch.
type BatchResult struct {
	Identity string
	Path     string
	Err      error
}

// IssueBatch issues every identity into outDir, in parallel on all cores.
// An identity that fails (bad syntax, file exists) is reported and the batch
// goes on. done is called once per identity, from any goroutine.
func (c *Center) IssueBatch(ctx context.Context, ids []string, outDir string, done func(BatchResult)) []BatchResult {
	c.master.expand() // once, before the workers share it
	results := make([]BatchResult, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = c.issueOne(ids[i], outDir)
				if done != nil {
					done(results[i])
				}
			}
		}()
	}
	for i := range ids {
		select {
		case next <- i:
		case <-ctx.Done():
			for j := i; j < len(ids); j++ {
				results[j] = BatchResult{Identity: ids[j], Err: ctx.Err()}
			}
			close(next)
			wg.Wait()
			return results
		}
	}
	close(next)
	wg.Wait()
	return results
}

func (c *Center) issueOne(id, outDir string) BatchResult {
	r := BatchResult{Identity: id}
	if err := ValidateIdentity(id); err != nil {
		r.Err = err
		return r
	}
	r.Path = filepath.Join(outDir, KeyFileName(id))
	if _, err := os.Lstat(r.Path); err == nil {
		r.Err = fmt.Errorf("%s: %w", r.Path, os.ErrExist)
		return r
	}
	k, err := c.master.Issue(id)
	if err != nil {
		r.Err = err
		return r
	}
	defer k.Destroy()
	r.Err = k.WriteFile(r.Path)
	return r
}
