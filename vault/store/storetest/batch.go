package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"orderseal/vault/store"
)

// countingData counts a data store's Put calls: one per commit.
type countingData struct {
	store.Data
	puts atomic.Int64
}

func (c *countingData) Put(ctx context.Context, rs ...store.Record) error {
	c.puts.Add(1)
	return c.Data.Put(ctx, rs...)
}

// testRegisterBatch: a batch is one durable commit (one Put per data store,
// one index transaction) with an audit entry per valid item; an invalid
// item is refused in its result alone; repeats share a token; a batch the
// index refuses leaves nothing.
func testRegisterBatch(t *testing.T, nv NewVault) {
	ctx := context.Background()
	f := &faultIndex{}
	var primary, backup countingData
	e := newEnvWrapped(t, nv, true, func(b store.Backends) store.Backends {
		f.Index = b.Index
		b.Index = f
		primary.Data, backup.Data = b.Primary, b.Backup
		b.Primary, b.Backup = &primary, &backup
		return b
	})
	var items []store.BatchItem
	for i := range 300 {
		items = append(items, store.BatchItem{Type: store.TypeAddress, Label: fmt.Sprintf("a%d", i), Value: fmt.Appendf(nil, "%d Batch Road", i)})
	}
	items = append(items,
		store.BatchItem{Type: store.TypeAddress, Label: "again", Value: []byte("7 Batch Road")},
		store.BatchItem{Type: store.TypeAddress, Value: nil},
		store.BatchItem{Type: "xyz", Value: []byte("v")},
		store.BatchItem{Type: store.TypePhone, Value: []byte("+821012345678")})
	u0, p0, b0 := f.updates.Load(), primary.puts.Load(), backup.puts.Load()
	res, err := e.s.RegisterBatch(ctx, "cardholder:alice", items)
	if err != nil {
		t.Fatal(err)
	}
	if u, p, b := f.updates.Load()-u0, primary.puts.Load()-p0, backup.puts.Load()-b0; u != 1 || p != 1 || b != 1 {
		t.Fatalf("%d index transactions, %d primary and %d backup commits; want 1 each", u, p, b)
	}
	if len(res) != len(items) {
		t.Fatalf("%d results for %d items", len(res), len(items))
	}
	for i := range 300 {
		if res[i].Err != nil || !res[i].Created || res[i].Token == "" {
			t.Fatalf("item %d: %+v", i, res[i])
		}
	}
	if r := res[300]; r.Err != nil || r.Created || r.Token != res[7].Token {
		t.Fatalf("the repeat: %+v, want %s", r, res[7].Token)
	}
	if en, _ := e.s.Lookup(ctx, res[7].Token); en.Label != "again" {
		t.Fatalf("the repeat's label: %+v", en)
	}
	if !errors.Is(res[301].Err, store.ErrInvalid) || !errors.Is(res[302].Err, store.ErrTokenType) || res[301].Token != "" {
		t.Fatalf("invalid items: %+v %+v", res[301], res[302])
	}
	if res[303].Err != nil || !res[303].Created {
		t.Fatalf("the phone: %+v", res[303])
	}
	for _, i := range []int{0, 150, 299} {
		if got, err := e.s.Reveal(ctx, res[i].Token); err != nil || string(got) != string(items[i].Value) {
			t.Fatalf("reveal %d: %q %v", i, got, err)
		}
	}
	if n, err := store.VerifyAudit(ctx, e.b.Index); err != nil || n != 302 {
		t.Fatalf("audit: %d entries, %v; want one per valid item (302)", n, err)
	}
	if l, _ := e.s.List(ctx, "cardholder:alice"); len(l) != 301 {
		t.Fatalf("alice lists %d tokens, want 301", len(l))
	}

	// The index refuses: nothing of the batch is kept.
	f.refuse("cardholder:mallory")
	before := recordCount(t, e.b.Primary)
	if _, err := e.s.RegisterBatch(ctx, "cardholder:mallory", items[:10]); err == nil {
		t.Fatal("a batch the index refused succeeded")
	}
	if n := recordCount(t, e.b.Primary); n != before {
		t.Fatalf("a refused batch left %d records", n-before)
	}
	if _, err := e.s.RegisterBatch(ctx, "cardholder:alice", nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("an empty batch: %v", err)
	}
	if _, err := e.s.RegisterBatch(ctx, "cardholder:alice", make([]store.BatchItem, store.MaxBatchItems+1)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("an oversized batch: %v", err)
	}
}
