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
	if err := sqlitex.Migrate(context.Background(), db, []string{noncesql.Migration}); err != nil {
		t.Fatal(err)
	}
	return noncesql.New(db, nonce.Fixed(quota)), func() { db.Close() }
}

func TestConformance(t *testing.T) {
	noncetest.Run(t, func(t *testing.T, quota int) nonce.Store {
		s, closeDB := open(t, filepath.Join(t.TempDir(), "n.db"), quota)
		t.Cleanup(closeDB)
		return s
	})
}

// TestSurvivesReopen: what one process recorded, the next one on the same
// file (a restart, or another node of the role) refuses as a replay.
func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "n.db")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	exp := now.Add(10 * time.Minute)
	a, closeA := open(t, path, 10)
	if err := a.Record(ctx, "carrier:parcel.example", "n1", now, exp); err != nil {
		t.Fatal(err)
	}
	closeA()
	b, closeB := open(t, path, 10)
	defer closeB()
	if err := b.Record(ctx, "carrier:parcel.example", "n1", now.Add(time.Minute), exp); !errors.Is(err, nonce.ErrReplayed) {
		t.Fatalf("after a restart: %v, want ErrReplayed", err)
	}
	// A second node on the same file shares the store while both run.
	c, closeC := open(t, path, 10)
	defer closeC()
	if err := b.Record(ctx, "carrier:parcel.example", "n2", now, exp); err != nil {
		t.Fatal(err)
	}
	if err := c.Record(ctx, "carrier:parcel.example", "n2", now, exp); !errors.Is(err, nonce.ErrReplayed) {
		t.Fatalf("on another node: %v, want ErrReplayed", err)
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

// TestLeavesConnectionsFull: a batch commits at synchronous=NORMAL on its
// connection and gives it back at FULL, so the daemon's own writes on that
// connection stay durable at their commit.
func TestLeavesConnectionsFull(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitex.Open(filepath.Join(t.TempDir(), "n.db"), sqlitex.Immediate(), sqlitex.Serialized())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlitex.Migrate(ctx, db, []string{noncesql.Migration}); err != nil {
		t.Fatal(err)
	}
	s := noncesql.New(db, nil)
	now := time.Now()
	for i := range 3 {
		if err := s.Record(ctx, "merchant:a", fmt.Sprint(i), now, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		var sync int
		if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
			t.Fatalf("after batch %d the connection is at synchronous=%d (%v), want 2 (FULL)", i, sync, err)
		}
	}
}
