package noncesql_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/signedhttp/nonce/noncetest"
	"orderseal/internal/sqlitex"
)

func open(t *testing.T, path string, quota int) (*noncesql.Store, func()) {
	t.Helper()
	db, err := sqlitex.Open(path, sqlitex.Immediate(), sqlitex.Serialized())
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitex.Migrate(context.Background(), db, migrations); err != nil {
		t.Fatal(err)
	}
	return noncesql.New(db, nonce.Fixed(quota)), func() { sqlitex.Close(db) }
}

var migrations = []string{noncesql.Migration, noncesql.Migration2}

func TestConformance(t *testing.T) {
	noncetest.Run(t, func(t *testing.T, quota int) nonce.Store {
		s, closeDB := open(t, filepath.Join(t.TempDir(), "n.db"), quota)
		t.Cleanup(closeDB)
		return s
	})
}

// TestSurvivesReopen: what one process recorded, the next one on the same
// file (a restart) refuses as a replay, and counts against the quota.
func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "n.db")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	exp := now.Add(10 * time.Minute)
	a, closeA := open(t, path, 2)
	if err := a.Record(ctx, "carrier:parcel.example", "n1", now, exp); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx, "carrier:parcel.example", "short", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	closeA()
	b, closeB := open(t, path, 2)
	defer closeB()
	steps := []struct {
		nonce string
		at    time.Duration
		want  error
	}{
		{"n1", time.Second, nonce.ErrReplayed},
		{"n2", time.Second, nonce.ErrQuota}, // the two from before are live
		{"short", 2 * time.Minute, nil},     // expired: no replay, and room again
		{"n1", 3 * time.Minute, nonce.ErrReplayed},
		{"short", 3 * time.Minute, nonce.ErrReplayed}, // recorded by b now
	}
	for i, st := range steps {
		if err := b.Record(ctx, "carrier:parcel.example", st.nonce, now.Add(st.at), exp); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
			t.Fatalf("step %d (%s): %v, want %v", i, st.nonce, err, st.want)
		}
	}
}

// TestRidesOnGroupCommit: a nonce recorded before a write of the daemon
// commits in that write's transaction — a process killed right after the
// write, before the store flushed, leaves both on disk — and a nonce no
// write carried is written by the store within its flush interval.
func TestRidesOnGroupCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "n.db")
	db, err := sqlitex.Open(path, sqlitex.Immediate())
	if err != nil {
		t.Fatal(err)
	}
	defer sqlitex.Close(db)
	if err := sqlitex.Migrate(ctx, db, append(migrations, `CREATE TABLE work (id INTEGER PRIMARY KEY)`)); err != nil {
		t.Fatal(err)
	}
	s := noncesql.New(db, nil, noncesql.WithFlushEvery(time.Hour))
	now := time.Now()
	if err := s.Record(ctx, "merchant:a", "with-write", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Another process's view of the file: what it reads is on disk (in
	// the WAL) whatever happens to this one.
	other, err := sqlitex.Open(path, sqlitex.ReadOnly(), sqlitex.MaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held := func(n string) bool {
		var k int
		if err := other.QueryRowContext(ctx, `SELECT COUNT(*) FROM signed_nonces WHERE nonce = ?`, n).Scan(&k); err != nil {
			t.Fatal(err)
		}
		return k == 1
	}
	if held("with-write") {
		t.Fatal("the nonce was written before any commit carried it: a commit of its own")
	}
	if _, err := sqlitex.Wrap(db).Exec(ctx, `INSERT INTO work DEFAULT VALUES`); err != nil {
		t.Fatal(err)
	}
	if !held("with-write") {
		t.Fatal("the daemon's write committed without the nonce recorded before it")
	}

	quick := noncesql.New(db, nil, noncesql.WithFlushEvery(10*time.Millisecond))
	if err := quick.Record(ctx, "merchant:a", "read-only", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !held("read-only") {
		if time.Now().After(deadline) {
			t.Fatal("a nonce no write carried was not written by the store's flush")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPrune: the clock window decides what stays; pruning frees the rows
// and the counts of expired nonces, and only theirs.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	s, closeDB := open(t, filepath.Join(t.TempDir(), "n.db"), 2)
	defer closeDB()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, n := range []string{"old1", "old2"} {
		if err := s.Record(ctx, "merchant:a", n, now, now.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Record(ctx, "merchant:b", "live", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(ctx, now.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Held(ctx); err != nil || n != 2 {
		t.Fatalf("after pruning one nonce: %d held, %v; want 2", n, err)
	}
	later := now.Add(2 * time.Minute)
	if err := s.Record(ctx, "merchant:a", "new1", later, later.Add(time.Minute)); err != nil {
		t.Fatalf("a's pruned nonce should have freed room: %v", err)
	}
	if err := s.Prune(ctx, now.Add(59*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Held(ctx); err != nil || n != 1 {
		t.Fatalf("after pruning a's nonces: %d held, %v; want b's one", n, err)
	}
	if err := s.Record(ctx, "merchant:b", "live", now.Add(59*time.Minute), now.Add(2*time.Hour)); !errors.Is(err, nonce.ErrReplayed) {
		t.Fatalf("b's live nonce after pruning: %v, want ErrReplayed", err)
	}
}

// TestLeavesConnectionsFull: a flush commits at synchronous=NORMAL on its
// connection and gives it back at FULL, so the daemon's own writes on that
// connection stay durable at their commit.
func TestLeavesConnectionsFull(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitex.Open(filepath.Join(t.TempDir(), "n.db"), sqlitex.Immediate(), sqlitex.Serialized())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlitex.Migrate(ctx, db, migrations); err != nil {
		t.Fatal(err)
	}
	s := noncesql.New(db, nil)
	now := time.Now()
	for i := range 3 {
		if err := s.Record(ctx, "merchant:a", fmt.Sprint(i), now, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var sync int
		if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
			t.Fatalf("after batch %d the connection is at synchronous=%d (%v), want 2 (FULL)", i, sync, err)
		}
	}
}
