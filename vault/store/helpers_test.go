package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orderseal/internal/sqlitex"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a vault on a temp dir: each data file in its own directory, so an
// outage can take the whole directory (database, -wal and -shm) away.
type env struct {
	dir                             string
	indexPath, dataPath, backupPath string
	primaryDir, backupDir, keyPath  string
	cfg                             Config
	clk                             *clock
	s                               *Store
}

func newEnv(t testing.TB, withBackup bool) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		dir:        dir,
		indexPath:  filepath.Join(dir, "index", "index.db"),
		primaryDir: filepath.Join(dir, "primary"),
		backupDir:  filepath.Join(dir, "backup"),
		keyPath:    filepath.Join(dir, "data.key"),
		clk:        newClock(),
	}
	e.dataPath = filepath.Join(e.primaryDir, "data.db")
	for _, d := range []string{filepath.Dir(e.indexPath), e.primaryDir, e.backupDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	key, err := CreateDataKey(e.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = Config{IndexPath: e.indexPath, DataPath: e.dataPath, DataKey: key, Now: e.clk.Now}
	if withBackup {
		e.backupPath = filepath.Join(e.backupDir, "backup.db")
		e.cfg.BackupPath = e.backupPath
	}
	e.open(t)
	t.Cleanup(func() {
		if e.s != nil {
			e.s.Close()
		}
	})
	return e
}

func (e *env) open(t testing.TB) {
	t.Helper()
	s, err := Open(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
}

func (e *env) reopen(t testing.TB) {
	t.Helper()
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
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
	restored := false
	restore = func() {
		if restored {
			return
		}
		restored = true
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(away, dir); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// rawDB opens a vault file directly, as an operator (or attacker) would.
func rawDB(t testing.TB, path string) *sqlDB {
	t.Helper()
	db, err := sqlitex.Open(path, sqlitex.MustExist())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &sqlDB{t: t, DB: db}
}

func (d *sqlDB) count(table string) int {
	d.t.Helper()
	var n int
	if err := d.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		d.t.Fatal(err)
	}
	return n
}

func (d *sqlDB) exec(q string, args ...any) {
	d.t.Helper()
	if _, err := d.Exec(q, args...); err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
}

func (d *sqlDB) has(table, token string) bool {
	d.t.Helper()
	var n int
	if err := d.QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE token = ?`, token).Scan(&n); err != nil {
		d.t.Fatal(err)
	}
	return n == 1
}

type sqlDB struct {
	t testing.TB
	*sql.DB
}
