package store

import (
	"context"
	"testing"
	"time"
)

// A registration killed between its data write and its index write leaves
// an orphan: Check names it as such (not a disagreement about live data),
// and SweepOrphans deletes it once OrphanGrace has passed, from every store,
// leaving indexed records alone.
func TestSweepOrphans(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	s := e.s
	live, _, err := s.Register(ctx, "cardholder:alice", TypeAddress, "home", []byte(`{"line1":"a"}`), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	orphan := func(token string) record {
		nonce, ct, err := s.keys.seal(token, []byte("orphaned value"))
		if err != nil {
			t.Fatal(err)
		}
		return record{token: token, dedupe: []byte("h-" + token), nonce: nonce, ct: ct, created: e.clk.Now().UnixNano()}
	}
	// Killed after the primary write only; after both data writes; and one
	// left in the pending table during an outage.
	old1, old2, oldPending := orphan("tok_orphanprimary_adr"), orphan("tok_orphanboth_adr"), orphan("tok_orphanpending_adr")
	if err := s.primary.put(ctx, old1); err != nil {
		t.Fatal(err)
	}
	if err := s.writeRecord(ctx, old2); err != nil {
		t.Fatal(err)
	}
	if err := putRecord(ctx, s.pending, "pending", oldPending); err != nil {
		t.Fatal(err)
	}

	diffs, err := s.Check(ctx)
	if err != nil || len(diffs) != 1 || diffs[0] != (Difference{Token: old1.token, Kind: Orphan}) {
		t.Fatalf("check: %+v %v", diffs, err)
	}

	e.clk.Add(OrphanGrace / 2)
	young := orphan("tok_orphanyoung_adr")
	if err := s.writeRecord(ctx, young); err != nil {
		t.Fatal(err)
	}
	n, next, err := s.SweepOrphans(ctx, 0, OrphanGrace)
	if err != nil || n != 0 {
		t.Fatalf("within the grace: swept %d, %v", n, err)
	}
	e.clk.Add(OrphanGrace/2 + time.Second)
	n, next, err = s.SweepOrphans(ctx, next, OrphanGrace)
	// old1 in primary, old2 in primary and backup, oldPending in pending.
	if err != nil || n != 4 || next == 0 {
		t.Fatalf("swept %d, next %d, %v; want 4 records", n, next, err)
	}
	for _, tok := range []string{old1.token, old2.token, oldPending.token} {
		for name, has := range map[string]func() bool{
			"primary": func() bool { _, ok, _ := s.primary.get(ctx, tok); return ok },
			"backup":  func() bool { _, ok, _ := s.backup.get(ctx, tok); return ok },
			"pending": func() bool { _, ok, _ := getRecord(ctx, s.pending, "pending", tok); return ok },
		} {
			if has() {
				t.Errorf("%s still in %s", tok, name)
			}
		}
	}
	if got, err := s.Reveal(ctx, live); err != nil || string(got) != `{"line1":"a"}` {
		t.Fatalf("the live token: %q %v", got, err)
	}
	if _, ok, _ := s.primary.get(ctx, young.token); !ok {
		t.Fatal("a record younger than the grace was swept")
	}
	// The watermark moves on: the same window is not read again, the
	// young orphan is swept in its turn.
	e.clk.Add(OrphanGrace)
	if n, _, err := s.SweepOrphans(ctx, next, OrphanGrace); err != nil || n != 2 {
		t.Fatalf("second sweep: %d %v; want the young orphan from both data stores", n, err)
	}
	if diffs, err := s.Check(ctx); err != nil || len(diffs) != 0 {
		t.Fatalf("check after the sweep: %+v %v", diffs, err)
	}
}
