package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"orderseal/vault/store"
	"orderseal/vault/store/sqlite"
	"orderseal/vault/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, newVault)
}

// vault is a vault's SQLite files in a temp dir, each data file in its own
// directory so an outage can take the whole directory (database, -wal and
// -shm) away.
type vault struct {
	dir                             string
	indexPath, dataPath, backupPath string
}

func newVault(t testing.TB, withBackup bool) storetest.Vault {
	dir := t.TempDir()
	v := &vault{dir: dir, indexPath: filepath.Join(dir, "index", "index.db"), dataPath: filepath.Join(dir, "primary", "data.db")}
	if withBackup {
		v.backupPath = filepath.Join(dir, "backup", "backup.db")
	}
	for _, d := range []string{"index", "primary", "backup"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *vault) Open(t testing.TB, check []byte) (b store.Backends, err error) {
	ctx := context.Background()
	defer func() {
		if err != nil {
			for _, c := range []interface{ Close() error }{b.Primary, b.Backup, b.Pending, b.Index} {
				if c != nil {
					c.Close()
				}
			}
			b = store.Backends{}
		}
	}()
	idx, err := sqlite.OpenIndex(ctx, v.indexPath)
	if err != nil {
		return b, err
	}
	b.Index = idx // assigned only when not nil, so the deferred Close sees no typed nils
	pend, err := sqlite.OpenPending(ctx, v.indexPath+".pending", check)
	if err != nil {
		return b, err
	}
	b.Pending = pend
	primary, err := sqlite.OpenData(ctx, v.dataPath, "primary", check, nil)
	if err != nil {
		return b, err
	}
	b.Primary = primary
	if v.backupPath != "" {
		backup, err := sqlite.OpenData(ctx, v.backupPath, "backup", check, nil)
		if err != nil {
			return b, err
		}
		b.Backup = backup
	}
	return b, nil
}

func (v *vault) Outage(t testing.TB, name string) (restore func()) {
	t.Helper()
	return outage(t, filepath.Join(v.dir, name))
}

// outage takes dir away the way an unmounted volume does, and puts a plain
// file in its place so nothing can be created there either. Tests run as
// root, which file modes do not stop; a missing directory stops everyone.
func outage(t testing.TB, dir string) (restore func()) {
	t.Helper()
	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(away, dir); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}
