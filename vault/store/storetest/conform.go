package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncetest"
	"orderseal/vault/store"
)

// backends opens fresh backends of a vault with a backup, closed at the end of the test.
func backends(t *testing.T, nv NewVault) (store.Backends, []byte) {
	t.Helper()
	_, check := newKey(t)
	b, err := nv(t, true).Open(t, check)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBackends(b) })
	return b, check
}

// newKey makes a data key and its store.KeyCheck.
func newKey(t *testing.T) (*store.DataKey, []byte) {
	t.Helper()
	key, err := store.CreateDataKey(t.TempDir() + "/data.key")
	if err != nil {
		t.Fatal(err)
	}
	check, err := store.KeyCheck(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, check
}

// closeBackends closes every store of b.
func closeBackends(b store.Backends) {
	for _, c := range []interface{ Close() error }{b.Primary, b.Backup, b.Pending, b.Index} {
		if c != nil {
			c.Close()
		}
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func entryAt(t *testing.T, owner string, created time.Time) store.Entry {
	t.Helper()
	tok, err := store.NewToken(store.TypeAddress)
	if err != nil {
		t.Fatal(err)
	}
	return store.Entry{Token: tok, Owner: owner, Type: store.TypeAddress, Label: "home", Epoch: 1, Created: created}
}

func insert(t *testing.T, idx store.Index, es ...store.Entry) {
	t.Helper()
	ctx := context.Background()
	if err := idx.Update(ctx, func(tx store.IndexTx) error { return tx.InsertEntries(ctx, es...) }); err != nil {
		t.Fatal(err)
	}
}

func tokensOf(es []store.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Token)
	}
	return out
}

func runIndex(t *testing.T, nv NewVault) {
	ctx := context.Background()
	t.Run("nonces", func(t *testing.T) {
		noncetest.Run(t, func(t *testing.T, quota int) nonce.Store {
			b, _ := backends(t, nv)
			return b.Index.Nonces(nonce.Fixed(quota))
		})
	})
	t.Run("nonces survive a reopening", func(t *testing.T) {
		key, err := store.CreateDataKey(t.TempDir() + "/data.key")
		if err != nil {
			t.Fatal(err)
		}
		check, err := store.KeyCheck(key)
		if err != nil {
			t.Fatal(err)
		}
		v := nv(t, false)
		exp := t0.Add(10 * time.Minute)
		for i, want := range []error{nil, nonce.ErrReplayed} {
			b, err := v.Open(t, check)
			if err != nil {
				t.Fatal(err)
			}
			got := b.Index.Nonces(nil).Record(ctx, "carrier:parcel.example", "n1", t0.Add(time.Duration(i)*time.Minute), exp)
			closeBackends(b)
			if !errors.Is(got, want) || (want == nil && got != nil) {
				t.Fatalf("opening %d: %v, want %v", i+1, got, want)
			}
		}
	})
	t.Run("entries", func(t *testing.T) {
		b, _ := backends(t, nv)
		idx := b.Index
		a1, a2 := entryAt(t, "cardholder:alice", t0), entryAt(t, "cardholder:alice", t0.Add(time.Minute))
		a2.Expires, a2.Shareable, a2.Type = t0.Add(time.Hour), true, store.TypeAddress
		bob := entryAt(t, "cardholder:bob", t0)
		insert(t, idx, a2, a1, bob)
		got, err := idx.Entry(ctx, a2.Token)
		if err != nil || got != a2 {
			t.Fatalf("Entry\n got %+v %v\nwant %+v", got, err, a2)
		}
		missing, _ := store.NewToken(store.TypeAddress)
		if _, err := idx.Entry(ctx, missing); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing entry: %v", err)
		}
		m, err := idx.Entries(ctx, []string{a1.Token, missing, bob.Token})
		if err != nil || len(m) != 2 || m[a1.Token] != a1 || m[bob.Token] != bob {
			t.Fatalf("Entries %+v %v", m, err)
		}
		if l, err := idx.List(ctx, "cardholder:alice", t0.Add(30*time.Minute)); err != nil || !slices.Equal(tokensOf(l), []string{a1.Token, a2.Token}) {
			t.Fatalf("List: %+v %v", l, err)
		}
		if l, err := idx.List(ctx, "cardholder:alice", t0.Add(time.Hour)); err != nil || !slices.Equal(tokensOf(l), []string{a1.Token}) {
			t.Fatalf("List after a2's expiry: %+v %v", l, err)
		}
		want := []string{a1.Token, a2.Token, bob.Token}
		// More tokens than one statement's list of values takes on SQLite.
		many := make([]store.Entry, 600)
		for i := range many {
			many[i] = entryAt(t, "cardholder:carol", t0.Add(time.Duration(i)*time.Second))
		}
		insert(t, idx, many...)
		if m, err := idx.Entries(ctx, append(tokensOf(many), missing)); err != nil || len(m) != len(many) || m[many[599].Token] != many[599] || m[many[0].Token] != many[0] {
			t.Fatalf("Entries of %d tokens: %d found, %v", len(many)+1, len(m), err)
		}
		if m, err := idx.Entries(ctx, nil); err != nil || len(m) != 0 {
			t.Fatalf("Entries(nil): %v %v", m, err)
		}
		for _, e := range many {
			want = append(want, e.Token)
		}
		var all []string
		for tok, err := range idx.Tokens(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, tok)
		}
		slices.Sort(all)
		slices.Sort(want)
		if !slices.Equal(all, want) {
			t.Fatalf("Tokens %v, want %v", all, want)
		}
	})
	t.Run("rotation", func(t *testing.T) {
		b, _ := backends(t, nv)
		idx := b.Index
		old, young := entryAt(t, "o", t0), entryAt(t, "o", t0.Add(time.Hour))
		insert(t, idx, old, young)
		due, err := idx.Due(ctx, t0.Add(time.Minute), t0.Add(2*time.Hour))
		if err != nil || !slices.Equal(tokensOf(due), []string{old.Token}) {
			t.Fatalf("Due %+v %v", due, err)
		}
		next := entryAt(t, "o", t0.Add(2*time.Hour))
		exp := t0.Add(48 * time.Hour)
		replace := func() (bool, error) {
			var done bool
			err := idx.Update(ctx, func(tx store.IndexTx) error {
				var err error
				done, err = tx.Replace(ctx, old.Token, next.Token, exp)
				return err
			})
			return done, err
		}
		if done, err := replace(); err != nil || !done {
			t.Fatalf("Replace: %v %v", done, err)
		}
		if done, err := replace(); err != nil || done {
			t.Fatalf("Replace again: %v %v, want not done", done, err)
		}
		if got, _ := idx.Entry(ctx, old.Token); got.ReplacedBy != next.Token || !got.Expires.Equal(exp) {
			t.Fatalf("replaced entry %+v", got)
		}
		if due, err := idx.Due(ctx, t0.Add(time.Minute), t0.Add(2*time.Hour)); err != nil || len(due) != 0 {
			t.Fatalf("Due after Replace %+v %v", due, err)
		}
	})
	t.Run("update rolls back", func(t *testing.T) {
		b, _ := backends(t, nv)
		idx := b.Index
		e := entryAt(t, "o", t0)
		boom := errors.New("boom")
		err := idx.Update(ctx, func(tx store.IndexTx) error {
			if err := tx.InsertEntries(ctx, e); err != nil {
				return err
			}
			if got, err := tx.Entry(ctx, e.Token); err != nil || got != e {
				t.Errorf("the transaction does not see its own entry: %+v %v", got, err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update: %v, want fn's error", err)
		}
		if _, err := idx.Entry(ctx, e.Token); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("entry of a rolled-back Update: %v", err)
		}
		insert(t, idx, e)
		if err := idx.Update(ctx, func(tx store.IndexTx) error { return tx.InsertEntries(ctx, e) }); err == nil {
			t.Fatal("a token inserted twice")
		}
	})
	t.Run("grants", func(t *testing.T) {
		b, _ := backends(t, nv)
		idx := b.Index
		e := entryAt(t, "o", t0)
		insert(t, idx, e)
		g := store.Grant{ID: "grt_1", Token: e.Token, Merchant: "merchant:shop", Carrier: "carrier:fast", OrderID: "o-1",
			Invoice: "inv-1", Expires: t0.Add(time.Hour), MaxUses: 2, State: store.GrantActive}
		add := func(g store.Grant) error {
			return idx.Update(ctx, func(tx store.IndexTx) error { return tx.InsertGrant(ctx, g, t0) })
		}
		if err := add(g); err != nil {
			t.Fatal(err)
		}
		dup := g
		dup.ID = "grt_2"
		if err := add(dup); err == nil {
			t.Fatal("two grants for one token, carrier and order")
		}
		if got, err := idx.Grant(ctx, g.Token, g.Carrier, g.OrderID); err != nil || got != g {
			t.Fatalf("Grant %+v %v, want %+v", got, err, g)
		}
		if _, err := idx.Grant(ctx, g.Token, "carrier:slow", g.OrderID); !errors.Is(err, store.ErrNoGrant) {
			t.Fatalf("missing grant: %v", err)
		}
		if gs, err := idx.GrantsOf(ctx, "merchant:shop"); err != nil || len(gs) != 1 || gs[0] != g {
			t.Fatalf("GrantsOf %+v %v", gs, err)
		}
		if gs, err := idx.GrantsOf(ctx, "merchant:other"); err != nil || len(gs) != 0 {
			t.Fatalf("GrantsOf another merchant %+v %v", gs, err)
		}
		other := g
		other.ID, other.Merchant, other.OrderID = "grt_3", "merchant:other", "o-2"
		if err := add(other); err != nil {
			t.Fatal(err)
		}
		if gs, err := idx.Grants(ctx); err != nil || len(gs) != 2 || gs[0] != g || gs[1] != other {
			t.Fatalf("Grants %+v %v, want both merchants' grants", gs, err)
		}
		if gs, err := idx.GrantsOf(ctx, "merchant:shop"); err != nil || len(gs) != 1 {
			t.Fatalf("GrantsOf after another merchant's grant %+v %v", gs, err)
		}
		for _, step := range []struct {
			name    string
			invoice string
			now     time.Time
			ok      bool
			uses    int
		}{
			{"invoice mismatch", "inv-X", t0, false, 0},
			{"expired", "inv-1", t0.Add(time.Hour), false, 0},
			{"first use", "inv-1", t0, true, 1},
			{"second use", "inv-1", t0, true, 2},
			{"used up", "inv-1", t0, false, 2},
		} {
			got, ok, err := idx.UseGrant(ctx, g.Token, g.Carrier, g.OrderID, step.invoice, step.now)
			if err != nil || ok != step.ok || (ok && got.Uses != step.uses) {
				t.Fatalf("%s: %+v %v %v", step.name, got, ok, err)
			}
			if now, _ := idx.Grant(ctx, g.Token, g.Carrier, g.OrderID); now.Uses != step.uses {
				t.Fatalf("%s: %d uses stored, want %d", step.name, now.Uses, step.uses)
			}
		}
		// States: a pending or revoked grant is never used; the order's
		// grants and the carrier's are found by OrderGrants and GrantsTo.
		pend := g
		pend.ID, pend.OrderID, pend.State = "grt_4", "o-3", store.GrantPending
		if err := add(pend); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := idx.UseGrant(ctx, pend.Token, pend.Carrier, pend.OrderID, pend.Invoice, t0); ok || err != nil {
			t.Fatalf("UseGrant of a pending grant: %v %v", ok, err)
		}
		var of []store.Grant
		if err := idx.Update(ctx, func(tx store.IndexTx) error {
			var err error
			if of, err = tx.OrderGrants(ctx, "merchant:shop", "o-3"); err != nil {
				return err
			}
			return tx.SetGrantState(ctx, pend.ID, store.GrantActive)
		}); err != nil || len(of) != 1 || of[0] != pend {
			t.Fatalf("OrderGrants %+v %v", of, err)
		}
		if got, ok, err := idx.UseGrant(ctx, pend.Token, pend.Carrier, pend.OrderID, pend.Invoice, t0); !ok || err != nil || got.State != store.GrantActive {
			t.Fatalf("UseGrant once active: %+v %v %v", got, ok, err)
		}
		if err := idx.Update(ctx, func(tx store.IndexTx) error { return tx.SetGrantState(ctx, pend.ID, store.GrantRevoked) }); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := idx.UseGrant(ctx, pend.Token, pend.Carrier, pend.OrderID, pend.Invoice, t0); ok || err != nil {
			t.Fatalf("UseGrant of a revoked grant: %v %v", ok, err)
		}
		if err := idx.Update(ctx, func(tx store.IndexTx) error { return tx.SetGrantState(ctx, "grt_none", store.GrantRevoked) }); err == nil {
			t.Fatal("SetGrantState of a grant that does not exist")
		}
		if gs, err := idx.GrantsTo(ctx, "carrier:fast"); err != nil || len(gs) != 3 {
			t.Fatalf("GrantsTo %+v %v", gs, err)
		}
		if gs, err := idx.GrantsTo(ctx, "carrier:slow"); err != nil || len(gs) != 0 {
			t.Fatalf("GrantsTo another carrier %+v %v", gs, err)
		}
	})
	t.Run("audit", func(t *testing.T) {
		b, _ := backends(t, nv)
		idx := b.Index
		err := idx.Update(ctx, func(tx store.IndexTx) error {
			seq, hash, err := tx.AuditHead(ctx)
			if err != nil || seq != 0 || hash != nil {
				t.Errorf("empty log's head: %d %x %v", seq, hash, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Concurrent appends each read the head and append the next seq:
		// the write lock keeps them from reading the same head.
		const n = 20
		appendConcurrently(t, func(int) store.Index { return idx }, n)
		checkChain(t, idx, n)
		oks, err := idx.AuditFind(ctx, "reveal", "ok")
		if err != nil || len(oks) != n/2 {
			t.Fatalf("AuditFind reveal ok: %d %v", len(oks), err)
		}
		if grants, err := idx.AuditFind(ctx, "grant", ""); err != nil || len(grants) != n/2 || grants[0].Seq > grants[1].Seq {
			t.Fatalf("AuditFind grant: %d %v", len(grants), err)
		}
		if all, err := idx.AuditFind(ctx, "", ""); err != nil || len(all) != n {
			t.Fatalf("AuditFind any: %d %v", len(all), err)
		}
	})
	t.Run("audit from two nodes", func(t *testing.T) {
		// Two vault nodes over one index, each with its own handle (on
		// PostgreSQL its own pool): Update's lock holds across them, so
		// the chain never forks and no append fails.
		_, check := newKey(t)
		v := nv(t, false)
		var nodes []store.Index
		for range 2 {
			b, err := v.Open(t, check)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closeBackends(b) })
			nodes = append(nodes, b.Index)
		}
		const n = 30
		appendConcurrently(t, func(i int) store.Index { return nodes[i%2] }, n)
		checkChain(t, nodes[1], n)
	})
}

// appendConcurrently runs n Updates at once, the i-th on node(i), each
// reading the audit head and appending the next entry onto it.
func appendConcurrently(t *testing.T, node func(i int) store.Index, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = node(i).Update(ctx, func(tx store.IndexTx) error {
				seq, prev, err := tx.AuditHead(ctx)
				if err != nil {
					return err
				}
				if seq == 0 {
					prev = make([]byte, sha256.Size)
				}
				kind, outcome := "reveal", "ok"
				if i%2 == 0 {
					kind, outcome = "grant", fmt.Sprint("refused:", i)
				}
				h := sha256.Sum256(fmt.Append(prev, seq))
				return tx.AppendAudit(ctx, store.AuditEvent{Seq: seq + 1, Time: t0.Add(time.Duration(seq) * time.Second),
					Kind: kind, Actor: "carrier:fast", Token: "tok_x", OrderID: fmt.Sprint("o-", i), Outcome: outcome, Prev: prev, Hash: h[:]})
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// checkChain checks idx's audit log is the n entries appendConcurrently chained.
func checkChain(t *testing.T, idx store.Index, n int64) {
	t.Helper()
	prev := make([]byte, sha256.Size)
	seq := int64(0)
	for ev, err := range idx.Audit(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		seq++
		h := sha256.Sum256(fmt.Append(prev, seq-1))
		if ev.Seq != seq || !bytes.Equal(ev.Prev, prev) || !bytes.Equal(ev.Hash, h[:]) || !ev.Time.Equal(t0.Add(time.Duration(seq-1)*time.Second)) {
			t.Fatalf("entry %d: %+v", seq, ev)
		}
		prev = ev.Hash
	}
	if seq != n {
		t.Fatalf("%d entries, want %d", seq, n)
	}
}

func record(token string, created int64) store.Record {
	return store.Record{Token: token, Dedupe: []byte("hash " + token[:4]), Nonce: bytes.Repeat([]byte{1}, 24),
		Sealed: []byte("sealed " + token), Created: created}
}

// runRecords checks what Data and Pending have in common.
func runRecords(t *testing.T, open func(t *testing.T) store.Records) {
	ctx := context.Background()
	t.Run("put and get", func(t *testing.T) {
		rs := open(t)
		a, b := record("tok-a", 1), record("tok-b", 2)
		if err := rs.Put(ctx, a, b); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := rs.Get(ctx, "tok-a"); err != nil || !ok || !got.Same(a) || got.Created != 1 {
			t.Fatalf("Get %+v %v %v", got, ok, err)
		}
		if _, ok, err := rs.Get(ctx, "tok-none"); err != nil || ok {
			t.Fatalf("Get missing: %v %v", ok, err)
		}
		if err := rs.Put(ctx, a); err != nil {
			t.Fatalf("the same record again: %v", err)
		}
		other := a
		other.Sealed = []byte("another value")
		if err := rs.Put(ctx, other); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("another record under a held token: %v", err)
		}
		if got, _, _ := rs.Get(ctx, "tok-a"); !got.Same(a) {
			t.Fatal("a conflicting Put replaced the record")
		}
	})
	t.Run("by hash", func(t *testing.T) {
		rs := open(t)
		// tok-1 and tok-2 share a hash (the hash takes the first four characters).
		r1, r2, r3 := record("tok-2", 5), record("tok-1", 9), record("xyz-3", 7)
		if err := rs.Put(ctx, r1, r2, r3); err != nil {
			t.Fatal(err)
		}
		m, err := rs.TokensByHash(ctx, [][]byte{r1.Dedupe, r3.Dedupe, []byte("absent")})
		if err != nil || len(m) != 2 || !slices.Equal(m[string(r1.Dedupe)], []string{"tok-2", "tok-1"}) || !slices.Equal(m[string(r3.Dedupe)], []string{"xyz-3"}) {
			t.Fatalf("TokensByHash %v %v", m, err)
		}
		if m, err := rs.TokensByHash(ctx, nil); err != nil || len(m) != 0 {
			t.Fatalf("TokensByHash(nil) %v %v", m, err)
		}
	})
	t.Run("delete and sweep", func(t *testing.T) {
		rs := open(t)
		if err := rs.Put(ctx, record("tok-1", 10), record("tok-2", 20), record("tok-3", 30), record("tok-4", 40)); err != nil {
			t.Fatal(err)
		}
		if toks, err := rs.CreatedIn(ctx, 10, 30); err != nil || !slices.Equal(toks, []string{"tok-2", "tok-3"}) {
			t.Fatalf("CreatedIn %v %v", toks, err)
		}
		if err := rs.DeleteOld(ctx, "tok-4", 30); err != nil {
			t.Fatal(err)
		}
		if err := rs.DeleteOld(ctx, "tok-3", 30); err != nil {
			t.Fatal(err)
		}
		if err := rs.Delete(ctx, "tok-1", "tok-none"); err != nil {
			t.Fatal(err)
		}
		if err := rs.Delete(ctx); err != nil {
			t.Fatalf("Delete of nothing: %v", err)
		}
		for tok, want := range map[string]bool{"tok-1": false, "tok-2": true, "tok-3": false, "tok-4": true} {
			if has(t, rs, tok) != want {
				t.Errorf("%s held: %v, want %v", tok, !want, want)
			}
		}
	})
}

func runData(t *testing.T, nv NewVault) {
	ctx := context.Background()
	runRecords(t, func(t *testing.T) store.Records { b, _ := backends(t, nv); return b.Primary })
	t.Run("scan and ping", func(t *testing.T) {
		b, _ := backends(t, nv)
		d := b.Backup
		if err := d.Put(ctx, record("tok-c", 1), record("tok-a", 3), record("tok-b", 2)); err != nil {
			t.Fatal(err)
		}
		var toks []string
		for r, err := range d.Scan(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, r.Token)
		}
		if !slices.Equal(toks, []string{"tok-a", "tok-b", "tok-c"}) {
			t.Fatalf("Scan order %v", toks)
		}
		if err := d.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("outage", func(t *testing.T) {
		key, _ := store.CreateDataKey(t.TempDir() + "/data.key")
		check, _ := store.KeyCheck(key)
		v := nv(t, false)
		b, err := v.Open(t, check)
		if err != nil {
			t.Fatal(err)
		}
		defer closeBackends(b)
		if err := b.Primary.Put(ctx, record("tok-1", 1)); err != nil {
			t.Fatal(err)
		}
		restore := v.Outage(t, "primary")
		if err := b.Primary.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Ping during the outage: %v", err)
		}
		if err := b.Primary.Put(ctx, record("tok-2", 2)); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Put during the outage: %v", err)
		}
		if _, _, err := b.Primary.Get(ctx, "tok-1"); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Get during the outage: %v", err)
		}
		if _, _, err := b.Primary.Checkpoint(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Checkpoint during the outage: %v", err)
		}
		if err := b.Primary.PutCheckpoint(ctx, store.Checkpoint{Seq: 1}); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("PutCheckpoint during the outage: %v", err)
		}
		// Deleting nothing is done whatever the store's state.
		if err := b.Primary.Delete(ctx); err != nil {
			t.Fatalf("Delete of nothing during the outage: %v", err)
		}
		restore()
		if !has(t, b.Primary, "tok-1") {
			t.Fatal("the record is gone after the outage")
		}
	})
	t.Run("checkpoint", func(t *testing.T) {
		key, check := newKey(t)
		v := nv(t, true)
		b, err := v.Open(t, check)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := b.Backup.Checkpoint(ctx); ok || err != nil {
			t.Fatalf("checkpoint of a new store: %v %v", ok, err)
		}
		cp := func(seq int64) store.Checkpoint {
			return store.SignCheckpoint(key, seq, bytes.Repeat([]byte{byte(seq)}, sha256.Size), t0.Add(time.Duration(seq)*time.Second))
		}
		// A checkpoint of a lower seq never replaces a higher one.
		for _, seq := range []int64{5, 3, 5, 9, 7} {
			if err := b.Backup.PutCheckpoint(ctx, cp(seq)); err != nil {
				t.Fatal(err)
			}
		}
		closeBackends(b)
		if b, err = v.Open(t, check); err != nil {
			t.Fatal(err)
		}
		defer closeBackends(b)
		got, ok, err := b.Backup.Checkpoint(ctx)
		if err != nil || !ok || got.Seq != 9 || !bytes.Equal(got.Head, cp(9).Head) || !got.At.Equal(cp(9).At) || store.VerifyCheckpoint(key, got) != nil {
			t.Fatalf("checkpoint after reopening: %+v %v %v, want seq 9", got, ok, err)
		}
		if _, ok, err := b.Primary.Checkpoint(ctx); ok || err != nil {
			t.Fatalf("the other store's checkpoint: %v %v, want none", ok, err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		wrongKey(t, nv, func(b store.Backends) error { return b.Primary.Ping(context.Background()) })
	})
}

// wrongKey opens a vault's stores again under another data key: opening
// fails with ErrWrongKey, or probe does.
func wrongKey(t *testing.T, nv NewVault, probe func(store.Backends) error) {
	t.Helper()
	v := nv(t, true)
	var checks [][]byte
	for range 2 {
		key, _ := store.CreateDataKey(t.TempDir() + "/data.key")
		c, _ := store.KeyCheck(key)
		checks = append(checks, c)
	}
	b, err := v.Open(t, checks[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Primary.Put(context.Background(), record("tok-1", 1)); err != nil {
		t.Fatal(err)
	}
	closeBackends(b)
	b, err = v.Open(t, checks[1])
	if err == nil {
		err = probe(b)
		closeBackends(b)
	}
	if !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("stores of another data key: %v, want ErrWrongKey", err)
	}
}

func runPending(t *testing.T, nv NewVault) {
	ctx := context.Background()
	runRecords(t, func(t *testing.T) store.Records { b, _ := backends(t, nv); return b.Pending })
	t.Run("queue", func(t *testing.T) {
		b, _ := backends(t, nv)
		p := b.Pending
		if err := p.Put(ctx, record("tok-c", 1), record("tok-a", 3), record("tok-b", 1)); err != nil {
			t.Fatal(err)
		}
		old, err := p.Oldest(ctx, 2)
		if err != nil || len(old) != 2 || old[0].Token != "tok-b" || old[1].Token != "tok-c" {
			t.Fatalf("Oldest %+v %v", old, err)
		}
		if err := p.Retried(ctx, "tok-b"); err != nil {
			t.Fatal(err)
		}
		if n, err := p.Count(ctx); err != nil || n != 3 {
			t.Fatalf("Count %d %v", n, err)
		}
		stale := old[0]
		stale.Nonce = bytes.Repeat([]byte{2}, 24)
		if err := p.Remove(ctx, stale); err != nil {
			t.Fatal(err)
		}
		if !has(t, p, "tok-b") {
			t.Fatal("Remove deleted a record other than the one given")
		}
		if err := p.Remove(ctx, old[0]); err != nil {
			t.Fatal(err)
		}
		toks, err := p.Tokens(ctx)
		slices.Sort(toks)
		if err != nil || !slices.Equal(toks, []string{"tok-a", "tok-c"}) {
			t.Fatalf("Tokens %v %v", toks, err)
		}
	})
	t.Run("wrong key", func(t *testing.T) { wrongKey(t, nv, func(store.Backends) error { return nil }) })
}
