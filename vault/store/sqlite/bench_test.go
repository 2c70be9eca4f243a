package sqlite_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"orderseal/internal/sqlitex"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlite"
)

// The raw benchmarks insert and select rows of the same shape as a data
// record (token, 32-byte dedupe hash, 24-byte nonce, sealed value) with the
// same pragmas, so Register and Reveal read as a ratio to plain SQLite.
// Register also writes the index and looks up dedupe candidates.

var benchValue = []byte("Flat 4, 221B Baker Street, London NW1 6XE, United Kingdom")

func BenchmarkRegister(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, false)
	for i := 0; b.Loop(); i++ {
		if _, _, err := e.s.Register(ctx, "cardholder:bench", store.TypeAddress, "", fmt.Appendf(nil, "%d %s", i, benchValue), false, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReveal(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, false)
	toks := make([]string, 256)
	for i := range toks {
		tok, _, err := e.s.Register(ctx, "cardholder:bench", store.TypeAddress, "", fmt.Appendf(nil, "%d %s", i, benchValue), false, 0)
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	for i := 0; b.Loop(); i++ {
		if _, err := e.s.Reveal(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
	}
}

// rawBenchDB is a data store file (its schema made by OpenData) opened raw.
func rawBenchDB(b *testing.B) *sqlDB {
	path := filepath.Join(b.TempDir(), "raw.db")
	d, err := sqlite.OpenData(context.Background(), path, "raw", []byte("check"), nil)
	if err != nil {
		b.Fatal(err)
	}
	d.Close()
	db, err := sqlitex.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return &sqlDB{t: b, DB: db}
}

func randomRow(b *testing.B) (tok string, dedupe, nonce, ct []byte) {
	tok, _ = store.NewToken(store.TypeAddress)
	dedupe, nonce, ct = make([]byte, 32), make([]byte, 24), make([]byte, len(benchValue)+4+16)
	for _, p := range [][]byte{dedupe, nonce, ct} {
		rand.Read(p)
	}
	return
}

func BenchmarkRawInsert(b *testing.B) {
	db := rawBenchDB(b)
	for i := 0; b.Loop(); i++ {
		tok, dedupe, nonce, ct := randomRow(b)
		if _, err := db.Exec(`INSERT INTO records (token, dedupe, nonce, ct, created) VALUES (?, ?, ?, ?, ?)`,
			tok, dedupe, nonce, ct, i); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawSelect(b *testing.B) {
	db := rawBenchDB(b)
	toks := make([]string, 256)
	for i := range toks {
		tok, dedupe, nonce, ct := randomRow(b)
		db.exec(`INSERT INTO records (token, dedupe, nonce, ct, created) VALUES (?, ?, ?, ?, ?)`, tok, dedupe, nonce, ct, i)
		toks[i] = tok
	}
	for i := 0; b.Loop(); i++ {
		var dedupe, nonce, ct []byte
		var created int64
		if err := db.QueryRow(`SELECT dedupe, nonce, ct, created FROM records WHERE token = ?`, toks[i%len(toks)]).
			Scan(&dedupe, &nonce, &ct, &created); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRegisterParallel: 32 callers at once per core, so registrations
// share group commits.
func BenchmarkRegisterParallel(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, false)
	var n atomic.Int64
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := e.s.RegisterAudited(ctx, "cardholder:bench", store.TypeAddress, "", fmt.Appendf(nil, "%d %s", n.Add(1), benchValue), false, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
