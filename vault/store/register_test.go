package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestGroupCommitDurable: many callers at once, some registering the same
// value; every call succeeds, the same value gets one token, and every
// token reveals its value after a restart.
func TestGroupCommitDurable(t *testing.T) {
	tests := []struct {
		name       string
		withBackup bool
		callers    int
		distinct   int // values; caller i registers value i % distinct
	}{
		{"primary only, all distinct", false, 300, 300},
		{"with backup, all distinct", true, 300, 300},
		{"with backup, each value four times", true, 300, 75},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, tc.withBackup)
			toks := make([]string, tc.callers)
			created := make([]bool, tc.callers)
			errs := make([]error, tc.callers)
			var wg sync.WaitGroup
			for i := range tc.callers {
				wg.Go(func() {
					v := fmt.Sprintf("%d Batch Street", i%tc.distinct)
					toks[i], created[i], errs[i] = e.s.RegisterAudited(ctx, "cardholder:alice", TypeAddress, "", []byte(v), false, 0)
				})
			}
			wg.Wait()
			byValue := map[int]string{}
			nCreated := 0
			for i := range tc.callers {
				if errs[i] != nil {
					t.Fatalf("caller %d: %v", i, errs[i])
				}
				if tok, seen := byValue[i%tc.distinct]; seen && tok != toks[i] {
					t.Fatalf("value %d has tokens %s and %s", i%tc.distinct, tok, toks[i])
				}
				byValue[i%tc.distinct] = toks[i]
				if created[i] {
					nCreated++
				}
			}
			if nCreated != tc.distinct {
				t.Fatalf("%d calls created a token, want %d", nCreated, tc.distinct)
			}

			e.reopen(t)
			for v, tok := range byValue {
				got, err := e.s.Reveal(ctx, tok)
				if err != nil || string(got) != fmt.Sprintf("%d Batch Street", v) {
					t.Fatalf("after reopen, %s: %q %v", tok, got, err)
				}
			}
			if n := rawDB(t, e.dataPath).count("records"); n != tc.distinct {
				t.Fatalf("primary holds %d records, want %d", n, tc.distinct)
			}
			if n, err := VerifyAudit(ctx, e.indexPath); err != nil || n != tc.callers {
				t.Fatalf("audit: %d entries, %v; want one per call", n, err)
			}
			if tc.withBackup {
				if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
					t.Fatalf("check: %v %v", d, err)
				}
			}
		})
	}
}

// reg is one registration of a hand-made batch.
type reg struct {
	owner string
	typ   TokenType
	value string
}

// commitBatch commits regs as one batch, as the committer would.
func commitBatch(t *testing.T, s *Store, regs ...reg) []registered {
	t.Helper()
	batch := make([]*registration, len(regs))
	for i, g := range regs {
		r, err := s.prepare(g.owner, g.typ, "", []byte(g.value), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		batch[i] = r
	}
	s.commit(batch)
	out := make([]registered, len(batch))
	for i, r := range batch {
		out[i] = <-r.done
	}
	return out
}

// TestBatchDedupe: within one batch, the same owner, type and value get
// one token, created for the first only; and a value registered before
// the batch keeps its token.
func TestBatchDedupe(t *testing.T) {
	ctx := context.Background()
	alice, bob := "cardholder:alice", "cardholder:bob"
	tests := []struct {
		name    string
		batch   []reg
		same    [][]int // groups of batch positions that share a token
		created []bool
	}{
		{"same value twice", []reg{{alice, TypeAddress, "1 Main St"}, {alice, TypeAddress, "1 Main St"}},
			[][]int{{0, 1}}, []bool{true, false}},
		{"same value, other owner or type", []reg{{alice, TypeAddress, "1 Main St"}, {bob, TypeAddress, "1 Main St"}, {alice, TypePhone, "1 Main St"}},
			[][]int{{0}, {1}, {2}}, []bool{true, true, true}},
		{"interleaved", []reg{{alice, TypeAddress, "a"}, {alice, TypeAddress, "b"}, {alice, TypeAddress, "a"}, {alice, TypeAddress, "b"}, {alice, TypeAddress, "a"}},
			[][]int{{0, 2, 4}, {1, 3}}, []bool{true, true, false, false, false}},
		{"registered before", []reg{{alice, TypeEmail, "earlier@example.org"}, {alice, TypeEmail, "earlier@example.org"}},
			[][]int{{0, 1}}, []bool{false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true)
			earlier, _, err := e.s.Register(ctx, alice, TypeEmail, "", []byte("earlier@example.org"), false, 0)
			if err != nil {
				t.Fatal(err)
			}
			out := commitBatch(t, e.s, tc.batch...)
			for i, o := range out {
				if o.err != nil || o.created != tc.created[i] {
					t.Fatalf("position %d: %+v, want created=%v", i, o, tc.created[i])
				}
				if tc.batch[i].typ == TypeEmail && o.token != earlier {
					t.Fatalf("position %d: %s, want the earlier token %s", i, o.token, earlier)
				}
			}
			seen := map[string]bool{}
			for _, g := range tc.same {
				tok := out[g[0]].token
				if seen[tok] {
					t.Fatalf("token %s shared across groups", tok)
				}
				seen[tok] = true
				for _, i := range g {
					if out[i].token != tok {
						t.Fatalf("positions %v: %s and %s", g, tok, out[i].token)
					}
				}
				got, err := e.s.Reveal(ctx, tok)
				if err != nil || string(got) != tc.batch[g[0]].value {
					t.Fatalf("reveal %s: %q %v", tok, got, err)
				}
			}
		})
	}
}

// TestBatchIndexFailure: when the index refuses one entry of a batch, the
// whole batch fails, nothing of it is readable or left in a data store,
// and the next batch goes through.
func TestBatchIndexFailure(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		primaryDown bool // the records go to the pending table
	}{
		{"records in the data stores", false},
		{"records in the pending table", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true)
			idx := rawDB(t, e.indexPath)
			idx.exec(`CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.owner = 'cardholder:mallory'
				BEGIN SELECT RAISE(ABORT, 'refused'); END`)
			stores := map[string]string{e.cfg.IndexPath + ".pending": "pending", e.backupPath: "records"}
			if tc.primaryDown {
				outage(t, e.primaryDir)
			} else {
				stores[e.dataPath] = "records"
			}
			batch := []reg{
				{"cardholder:alice", TypeAddress, "1 Main St"},
				{"cardholder:mallory", TypeAddress, "2 Main St"},
				{"cardholder:bob", TypeAddress, "3 Main St"},
			}
			out := commitBatch(t, e.s, batch...)
			for i, o := range out {
				if o.err == nil || o.token != "" {
					t.Fatalf("position %d: %+v, want the batch's error", i, o)
				}
			}
			if l, err := e.s.List(ctx, "cardholder:alice"); err != nil || len(l) != 0 {
				t.Fatalf("alice lists %v %v", l, err)
			}
			for path, table := range stores {
				if n := rawDB(t, path).count(table); n != 0 {
					t.Fatalf("%d records left in %s", n, path)
				}
			}
			if n, err := VerifyAudit(ctx, e.indexPath); err != nil || n != 0 {
				t.Fatalf("audit: %d %v", n, err)
			}

			idx.exec(`DROP TRIGGER refuse`)
			out = commitBatch(t, e.s, batch...)
			for i, o := range out {
				if o.err != nil || !o.created {
					t.Fatalf("retry, position %d: %+v", i, o)
				}
				if got, err := e.s.Reveal(ctx, o.token); err != nil || string(got) != batch[i].value {
					t.Fatalf("retry, reveal %d: %q %v", i, got, err)
				}
			}
		})
	}
}

// TestGroupCommitOutage: with a data store down, concurrent registrations
// land in the pending table, reveal from there, and Flush moves them all.
func TestGroupCommitOutage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		dir  func(e *env) string
	}{
		{"primary down", func(e *env) string { return e.primaryDir }},
		{"backup down", func(e *env) string { return e.backupDir }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true)
			restore := outage(t, tc.dir(e))
			const n = 120
			toks := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					toks[i], _, errs[i] = e.s.Register(ctx, "cardholder:bob", TypePhone, "", fmt.Appendf(nil, "+1 555 %04d", i), false, 0)
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if st, err := e.s.Status(ctx); err != nil || st.Pending != n {
				t.Fatalf("status %+v %v, want %d pending", st, err, n)
			}
			for i, tok := range toks {
				if got, err := e.s.Reveal(ctx, tok); err != nil || string(got) != fmt.Sprintf("+1 555 %04d", i) {
					t.Fatalf("reveal pending %d: %q %v", i, got, err)
				}
			}
			restore()
			if moved, err := e.s.Flush(ctx); err != nil || moved != n {
				t.Fatalf("flush: %d %v", moved, err)
			}
			if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
				t.Fatalf("check: %v %v", d, err)
			}
		})
	}
}

// TestGroupCommitCancel: callers whose context ends while they wait for a
// batch do not fail the others; each either gets ctx.Err() with nothing of
// its registration written, or its token, which then reveals.
func TestGroupCommitCancel(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	const n = 60
	toks := make([]string, n)
	errs := make([]error, n)
	cancels := make([]context.CancelFunc, n)
	var wg sync.WaitGroup
	e.s.regMu.Lock() // the committer stalls on its first batch; the rest queue
	for i := range n {
		cctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		wg.Go(func() {
			toks[i], _, errs[i] = e.s.Register(cctx, "cardholder:carol", TypeEmail, "", fmt.Appendf(nil, "c%d@example.org", i), false, 0)
		})
	}
	for i := 0; i < n; i += 2 {
		cancels[i]()
	}
	e.s.regMu.Unlock()
	wg.Wait()

	written := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			written++
			if got, err := e.s.Reveal(ctx, toks[i]); err != nil || string(got) != fmt.Sprintf("c%d@example.org", i) {
				t.Fatalf("caller %d: reveal %q %v", i, got, err)
			}
		case i%2 == 1:
			t.Fatalf("caller %d failed, and its context was not cancelled: %v", i, errs[i])
		case !errors.Is(errs[i], context.Canceled):
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		cancels[i]()
	}
	t.Logf("%d of %d registered", written, n)
	if got := rawDB(t, e.dataPath).count("records"); got != written {
		t.Fatalf("%d records for %d registered tokens", got, written)
	}
	if l, err := e.s.List(ctx, "cardholder:carol"); err != nil || len(l) != written {
		t.Fatalf("%d entries for %d registered tokens: %v", len(l), written, err)
	}
}

func TestRegisterAfterClose(t *testing.T) {
	e := newEnv(t, false)
	e.s.Close()
	if _, _, err := e.s.Register(context.Background(), "cardholder:alice", TypeAddress, "", []byte("x"), false, 0); !errors.Is(err, errClosed) {
		t.Fatalf("register after close: %v", err)
	}
}
