package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"orderseal/vault/store"
)

func runStore(t *testing.T, nv NewVault) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, NewVault)
	}{
		{"RegisterDedupe", testRegisterDedupe},
		{"RegisterRejects", testRegisterRejects},
		{"RegisterRelabels", testRegisterRelabels},
		{"SharedValue", testSharedValue},
		{"RegisterBatch", testRegisterBatch},
		{"ConcurrentRegisterDedupes", testConcurrentRegisterDedupes},
		{"RevealAndLookup", testRevealAndLookup},
		{"GroupCommitDurable", testGroupCommitDurable},
		{"BatchDedupe", testBatchDedupe},
		{"BatchIndexFailure", testBatchIndexFailure},
		{"GroupCommitOutage", testGroupCommitOutage},
		{"GroupCommitCancel", testGroupCommitCancel},
		{"RegisterAfterClose", testRegisterAfterClose},
		{"RotationAndGrace", testRotationAndGrace},
		{"RotationDuringOutage", testRotationDuringOutage},
		{"Grants", testGrants},
		{"UseGrantConcurrent", testUseGrantConcurrent},
		{"GrantStates", testGrantStates},
		{"PendingGrant", testPendingGrant},
		{"AuditChain", testAuditChain},
		{"AuditGroupCommit", testAuditGroupCommit},
		{"PendingDuringOutage", testPendingDuringOutage},
		{"FlushStopsMidway", testFlushStopsMidway},
		{"RunFlusher", testRunFlusher},
		{"BackupFailover", testBackupFailover},
		{"Check", testCheck},
		{"SweepOrphans", testSweepOrphans},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, nv) })
	}
}

// testRegisterRelabels: registering a value again under a new label
// renames the token (so the new label finds it); an empty label or the same
// one leaves it, and shareable never changes that way.
func testRegisterRelabels(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	tok, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "home", []byte("1 Main St"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ label, want string }{{"house", "house"}, {"", "house"}, {"house", "house"}, {"flat", "flat"}} {
		again, created, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, step.label, []byte("1 Main St"), true, 0)
		if err != nil || again != tok || created {
			t.Fatalf("register %q: %s %v %v", step.label, again, created, err)
		}
		en, err := e.s.Lookup(ctx, tok)
		if err != nil || en.Label != step.want || en.Shareable {
			t.Fatalf("after %q: %+v %v; want label %q, not shareable", step.label, en, err, step.want)
		}
	}
	e.reopen(t)
	if l, err := e.s.List(ctx, "cardholder:alice"); err != nil || len(l) != 1 || l[0].Label != "flat" {
		t.Fatalf("after reopen: %+v %v", l, err)
	}
}

// testSharedValue: one value registered by several owners is held once in
// the data store, each owner keeps a token of its own, and nothing a token,
// an index entry or a token record shows links the owners.
func testSharedValue(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	owners := []string{"cardholder:alice", "cardholder:bob", "carrier:parcel.example"}
	value := []byte(`{"name":"Kim","line1":"테헤란로 152","city":"강남구","region":"서울특별시","postal_code":"06236","country":"KR"}`)
	var toks []string
	for _, o := range owners {
		tok, created, err := e.s.Register(ctx, o, store.TypeAddress, "", value, false, 0)
		if err != nil || !created {
			t.Fatalf("%s: %v %v", o, created, err)
		}
		toks = append(toks, tok)
	}
	if toks[0] == toks[1] || toks[1] == toks[2] || toks[0] == toks[2] {
		t.Fatalf("owners share a token: %v", toks)
	}
	for _, d := range []store.Data{e.b.Primary, e.b.Backup} {
		if n, m := count(t, d), shareCount(t, d); n != 3 || m != 1 {
			t.Fatalf("data store holds %d token records and %d shared values, want 3 and 1", n, m)
		}
	}
	// Token records: nothing in common but their shape.
	var recs []store.Record
	for _, tok := range toks {
		r, ok, err := e.b.Primary.Get(ctx, tok)
		if err != nil || !ok {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	for i := range recs {
		for j := i + 1; j < len(recs); j++ {
			if bytes.Equal(recs[i].Dedupe, recs[j].Dedupe) || bytes.Equal(recs[i].Nonce, recs[j].Nonce) || bytes.Equal(recs[i].Sealed, recs[j].Sealed) {
				t.Fatalf("token records %d and %d share a field", i, j)
			}
		}
		for r, err := range e.b.Primary.Scan(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(r.Token, "shr_") && (bytes.Contains(recs[i].Sealed, []byte(r.Token)) || bytes.Contains(recs[i].Dedupe, r.Dedupe)) {
				t.Fatalf("token record %d shows the shared record's id", i)
			}
		}
	}
	// Index entries: none names anything another does, beyond the type.
	for i, tok := range toks {
		en, err := e.s.Lookup(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		for j, other := range toks {
			if i != j && (strings.Contains(en.Token, other) || en.Owner == owners[j] || en.ReplacedBy != "") {
				t.Fatalf("entry %d names token or owner %d: %+v", i, j, en)
			}
		}
		if got, err := e.s.Reveal(ctx, tok); err != nil || !bytes.Equal(got, value) {
			t.Fatalf("%s reveals %q %v", owners[i], got, err)
		}
	}
	// Rotation points the new token to the same shared value.
	e.clk.Add(2 * time.Hour)
	if n, err := e.s.Rotate(ctx, time.Hour, time.Hour); err != nil || n != 3 {
		t.Fatalf("rotate: %d %v", n, err)
	}
	if n := shareCount(t, e.b.Primary); n != 1 {
		t.Fatalf("%d shared values after rotation, want 1", n)
	}
	l, err := e.s.List(ctx, owners[1])
	if err != nil || len(l) != 2 {
		t.Fatalf("bob lists %+v %v", l, err)
	}
	for _, en := range l {
		if got, err := e.s.Reveal(ctx, en.Token); err != nil || !bytes.Equal(got, value) {
			t.Fatalf("after rotation %s reveals %q %v", en.Token, got, err)
		}
	}
	// A reference moved onto another owner's token record fails to open.
	rewrite(t, e.b.Primary, toks[0], func(r *store.Record) { r.Nonce, r.Sealed = recs[1].Nonce, recs[1].Sealed })
	rewrite(t, e.b.Backup, toks[0], func(r *store.Record) { r.Nonce, r.Sealed = recs[1].Nonce, recs[1].Sealed })
	if _, err := e.s.Reveal(ctx, toks[0]); !errors.Is(err, store.ErrCorrupt) && !errors.Is(err, store.ErrExpired) {
		t.Fatalf("moved reference: %v", err)
	}
}

func testRegisterDedupe(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	base, created, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "home", []byte("1 Main St"), false, 0)
	if err != nil || !created {
		t.Fatalf("register: %v created=%v", err, created)
	}
	tests := []struct {
		name  string
		owner string
		typ   store.TokenType
		value string
		same  bool
	}{
		{"same owner, type and value", "cardholder:alice", store.TypeAddress, "1 Main St", true},
		{"different owner", "cardholder:bob", store.TypeAddress, "1 Main St", false},
		{"different type", "cardholder:alice", store.TypePhone, "1 Main St", false},
		{"different value", "cardholder:alice", store.TypeAddress, "2 Main St", false},
		{"owner/value boundary", "cardholder:alice1", store.TypeAddress, " Main St", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, created, err := e.s.Register(ctx, tc.owner, tc.typ, "x", []byte(tc.value), false, 0)
			if err != nil {
				t.Fatal(err)
			}
			if (tok == base) != tc.same || created == tc.same {
				t.Fatalf("token %s (base %s) created=%v, want same=%v", tok, base, created, tc.same)
			}
			if typ, _ := store.ParseTokenType(tok); typ != tc.typ {
				t.Fatalf("token type %s, want %s", typ, tc.typ)
			}
			again, created, err := e.s.Register(ctx, tc.owner, tc.typ, "y", []byte(tc.value), true, 0)
			if err != nil || again != tok || created {
				t.Fatalf("second register: %s %v %v", again, created, err)
			}
		})
	}
	// Dedupe survives a restart.
	e.reopen(t)
	if tok, created, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("1 Main St"), false, 0); err != nil || tok != base || created {
		t.Fatalf("after reopen: %s %v %v", tok, created, err)
	}
	// An expired token is never handed out again: the same value gets a new one.
	tok, _, err := e.s.Register(ctx, "cardholder:carol", store.TypeEmail, "", []byte("c@example.org"), false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(2 * time.Hour)
	if tok2, created, err := e.s.Register(ctx, "cardholder:carol", store.TypeEmail, "", []byte("c@example.org"), false, time.Hour); err != nil || tok2 == tok || !created {
		t.Fatalf("after expiry: %s %v %v", tok2, created, err)
	}
}

func testRegisterRejects(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, false)
	tests := []struct {
		name  string
		owner string
		typ   store.TokenType
		label string
		value []byte
		ttl   time.Duration
		want  error
	}{
		{"no owner", "", store.TypeAddress, "", []byte("v"), 0, store.ErrInvalid},
		{"bad type", "o", "zip", "", []byte("v"), 0, store.ErrTokenType},
		{"empty value", "o", store.TypeAddress, "", nil, 0, store.ErrInvalid},
		{"huge value", "o", store.TypeAddress, "", make([]byte, store.MaxValueLen+1), 0, store.ErrInvalid},
		{"control in label", "o", store.TypeAddress, "a\nb", []byte("v"), 0, store.ErrInvalid},
		{"long label", "o", store.TypeAddress, strings.Repeat("l", store.MaxLabelLen+1), []byte("v"), 0, store.ErrInvalid},
		{"negative ttl", "o", store.TypeAddress, "", []byte("v"), -time.Second, store.ErrInvalid},
	}
	for _, tc := range tests {
		if _, _, err := e.s.Register(ctx, tc.owner, tc.typ, tc.label, tc.value, false, tc.ttl); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func testConcurrentRegisterDedupes(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	var wg sync.WaitGroup
	toks := make([]string, 8)
	errs := make([]error, 8)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], _, errs[i] = e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("same place"), false, 0)
		}()
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("goroutine %d: %s %v (first %s)", i, toks[i], errs[i], toks[0])
		}
	}
}

func testRevealAndLookup(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, false)
	tok, _, err := e.s.Register(ctx, "cardholder:alice", store.TypePhone, "mobile", []byte("+1 555 0100"), true, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := e.s.Register(ctx, "cardholder:alice", store.TypePhone, "work", []byte("+1 555 0199"), false, 0)
	v, err := e.s.Reveal(ctx, tok)
	if err != nil || string(v) != "+1 555 0100" {
		t.Fatalf("Reveal %q %v", v, err)
	}
	en, err := e.s.Lookup(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Entry{Token: tok, Owner: "cardholder:alice", Type: store.TypePhone, Label: "mobile", Epoch: 1,
		Created: e.clk.Now(), Expires: e.clk.Now().Add(24 * time.Hour), Shareable: true}
	if en != want {
		t.Fatalf("Lookup\n got %+v\nwant %+v", en, want)
	}

	missing, _ := store.NewToken(store.TypePhone)
	for _, tk := range []string{missing, "tok_nope", ""} {
		if _, err := e.s.Reveal(ctx, tk); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Reveal(%q): %v", tk, err)
		}
		if _, err := e.s.Lookup(ctx, tk); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Lookup(%q): %v", tk, err)
		}
	}

	// A ciphertext moved to another token fails: AAD binds it to its token.
	moveSealed(t, e.b.Primary, tok, other)
	if _, err := e.s.Reveal(ctx, other); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("moved ciphertext: %v", err)
	}

	e.clk.Add(25 * time.Hour)
	if _, err := e.s.Reveal(ctx, tok); !errors.Is(err, store.ErrExpired) {
		t.Fatalf("after ttl: %v", err)
	}
	if l, _ := e.s.List(ctx, "cardholder:alice"); len(l) != 1 || l[0].Token != other {
		t.Fatalf("List after expiry: %+v", l)
	}
}

// TestGroupCommitDurable: many callers at once, some registering the same
// value; every call succeeds, the same value gets one token, and every
// token reveals its value after a restart.
func testGroupCommitDurable(t *testing.T, nv NewVault) {
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
			e := newEnv(t, nv, tc.withBackup)
			toks := make([]string, tc.callers)
			created := make([]bool, tc.callers)
			errs := make([]error, tc.callers)
			var wg sync.WaitGroup
			for i := range tc.callers {
				wg.Go(func() {
					v := fmt.Sprintf("%d Batch Street", i%tc.distinct)
					toks[i], created[i], errs[i] = e.s.RegisterAudited(ctx, "cardholder:alice", store.TypeAddress, "", []byte(v), false, 0)
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
			if n := count(t, e.b.Primary); n != tc.distinct {
				t.Fatalf("primary holds %d records, want %d", n, tc.distinct)
			}
			if n := shareCount(t, e.b.Primary); n != tc.distinct {
				t.Fatalf("primary holds %d shared values, want %d", n, tc.distinct)
			}
			if n, err := store.VerifyAudit(ctx, e.b.Index); err != nil || n != tc.callers {
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

// TestBatchDedupe: within one batch, the same owner, type and value get
// one token, created for the first only; and a value registered before
// the batch keeps its token.
func testBatchDedupe(t *testing.T, nv NewVault) {
	ctx := context.Background()
	alice, bob := "cardholder:alice", "cardholder:bob"
	tests := []struct {
		name    string
		batch   []reg
		same    [][]int // groups of batch positions that share a token
		created []bool
	}{
		{"same value twice", []reg{{alice, store.TypeAddress, "1 Main St"}, {alice, store.TypeAddress, "1 Main St"}},
			[][]int{{0, 1}}, []bool{true, false}},
		{"same value, other owner or type", []reg{{alice, store.TypeAddress, "1 Main St"}, {bob, store.TypeAddress, "1 Main St"}, {alice, store.TypePhone, "1 Main St"}},
			[][]int{{0}, {1}, {2}}, []bool{true, true, true}},
		{"interleaved", []reg{{alice, store.TypeAddress, "a"}, {alice, store.TypeAddress, "b"}, {alice, store.TypeAddress, "a"}, {alice, store.TypeAddress, "b"}, {alice, store.TypeAddress, "a"}},
			[][]int{{0, 2, 4}, {1, 3}}, []bool{true, true, false, false, false}},
		{"registered before", []reg{{alice, store.TypeEmail, "earlier@example.org"}, {alice, store.TypeEmail, "earlier@example.org"}},
			[][]int{{0, 1}}, []bool{false, false}},
	}
	for _, tc := range tests {
		synctestRun(t, tc.name, func(t *testing.T) {
			e, f := newFaultEnv(t, nv, true)
			earlier, _, err := e.s.Register(ctx, alice, store.TypeEmail, "", []byte("earlier@example.org"), false, 0)
			if err != nil {
				t.Fatal(err)
			}
			out := commitBatch(t, e, f, tc.batch...)
			for i, o := range out {
				if o.err != nil || o.created != tc.created[i] {
					t.Fatalf("position %d: %+v, want created=%v", i, o, tc.created[i])
				}
				if tc.batch[i].typ == store.TypeEmail && o.token != earlier {
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
func testBatchIndexFailure(t *testing.T, nv NewVault) {
	ctx := context.Background()
	tests := []struct {
		name        string
		primaryDown bool // the records go to the pending table
	}{
		{"records in the data stores", false},
		{"records in the pending table", true},
	}
	for _, tc := range tests {
		synctestRun(t, tc.name, func(t *testing.T) {
			e, f := newFaultEnv(t, nv, true)
			f.refuse("cardholder:mallory")
			stores := map[string]store.Records{"pending": e.b.Pending, "backup": e.b.Backup}
			if tc.primaryDown {
				e.outage(t, "primary")
			} else {
				stores["primary"] = e.b.Primary
			}
			batch := []reg{
				{"cardholder:alice", store.TypeAddress, "1 Main St"},
				{"cardholder:mallory", store.TypeAddress, "2 Main St"},
				{"cardholder:bob", store.TypeAddress, "3 Main St"},
			}
			out := commitBatch(t, e, f, batch...)
			for i, o := range out {
				if o.err == nil || o.token != "" {
					t.Fatalf("position %d: %+v, want the batch's error", i, o)
				}
			}
			if l, err := e.s.List(ctx, "cardholder:alice"); err != nil || len(l) != 0 {
				t.Fatalf("alice lists %v %v", l, err)
			}
			for name, rs := range stores {
				n := recordCount(t, rs)
				for _, tok := range f.gated {
					if has(t, rs, tok) {
						n -= 2 // commitBatch's own registration (its record and shared value), not the batch's
					}
				}
				if n != 0 {
					t.Fatalf("%d records left in %s", n, name)
				}
			}
			if n, err := store.VerifyAudit(ctx, e.b.Index); err != nil || n != 0 {
				t.Fatalf("audit: %d %v", n, err)
			}

			f.refuse("")
			out = commitBatch(t, e, f, batch...)
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
func testGroupCommitOutage(t *testing.T, nv NewVault) {
	ctx := context.Background()
	tests := []struct {
		name string
		dir  string
	}{
		{"primary down", "primary"},
		{"backup down", "backup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nv, true)
			restore := e.outage(t, tc.dir)
			const n = 120
			toks := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					toks[i], _, errs[i] = e.s.Register(ctx, "cardholder:bob", store.TypePhone, "", fmt.Appendf(nil, "+1 555 %04d", i), false, 0)
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			// Each token's record and the shared value it points to.
			if st, err := e.s.Status(ctx); err != nil || st.Pending != 2*n {
				t.Fatalf("status %+v %v, want %d pending", st, err, 2*n)
			}
			for i, tok := range toks {
				if got, err := e.s.Reveal(ctx, tok); err != nil || string(got) != fmt.Sprintf("+1 555 %04d", i) {
					t.Fatalf("reveal pending %d: %q %v", i, got, err)
				}
			}
			restore()
			if moved, err := e.s.Flush(ctx); err != nil || moved != 2*n { // records and shared values
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
func testGroupCommitCancel(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e, f := newFaultEnv(t, nv, false)
	const n = 60
	toks := make([]string, n)
	errs := make([]error, n)
	cancels := make([]context.CancelFunc, n)
	var wg sync.WaitGroup
	f.hold() // the committer stalls on its first batch; the rest queue
	for i := range n {
		cctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		wg.Go(func() {
			toks[i], _, errs[i] = e.s.Register(cctx, "cardholder:carol", store.TypeEmail, "", fmt.Appendf(nil, "c%d@example.org", i), false, 0)
		})
	}
	for i := 0; i < n; i += 2 {
		cancels[i]()
	}
	f.release()
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
	if got := count(t, e.b.Primary); got != written {
		t.Fatalf("%d records for %d registered tokens", got, written)
	}
	if l, err := e.s.List(ctx, "cardholder:carol"); err != nil || len(l) != written {
		t.Fatalf("%d entries for %d registered tokens: %v", len(l), written, err)
	}
}

func testRegisterAfterClose(t *testing.T, nv NewVault) {
	e := newEnv(t, nv, false)
	e.s.Close()
	if _, _, err := e.s.Register(context.Background(), "cardholder:alice", store.TypeAddress, "", []byte("x"), false, 0); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("register after close: %v", err)
	}
}

func testRotationAndGrace(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	const day = 24 * time.Hour
	old, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "home", []byte("1 Rotation Rd"), true, 365*day)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(10 * day)
	young, _, _ := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "work", []byte("2 Young Rd"), false, 0)

	e.clk.Add(30 * day) // old is 40 days old, young 30
	n, err := e.s.Rotate(ctx, 35*day, 7*day)
	if err != nil || n != 1 {
		t.Fatalf("rotate: %d %v", n, err)
	}
	oe, err := e.s.Lookup(ctx, old)
	if err != nil || oe.ReplacedBy == "" {
		t.Fatalf("old entry %+v %v", oe, err)
	}
	nu := oe.ReplacedBy
	ne, err := e.s.Lookup(ctx, nu)
	if err != nil {
		t.Fatal(err)
	}
	if ne.Owner != oe.Owner || ne.Type != store.TypeAddress || ne.Label != "home" || !ne.Shareable || ne.Epoch != 2 ||
		!ne.Created.Equal(e.clk.Now()) || !ne.Expires.Equal(oe.Created.Add(365*day)) || ne.ReplacedBy != "" {
		t.Fatalf("new entry %+v", ne)
	}
	if !oe.Expires.Equal(e.clk.Now().Add(7 * day)) {
		t.Fatalf("old entry expires %v", oe.Expires)
	}
	if y, _ := e.s.Lookup(ctx, young); y.ReplacedBy != "" {
		t.Fatal("young token rotated")
	}

	for _, step := range []struct {
		advance time.Duration
		oldErr  error
	}{
		{0, nil},
		{6 * day, nil},
		{2 * day, store.ErrExpired}, // 8 days after rotation: past the 7-day grace
	} {
		e.clk.Add(step.advance)
		v, err := e.s.Reveal(ctx, old)
		if !errors.Is(err, step.oldErr) || (err == nil && string(v) != "1 Rotation Rd") {
			t.Fatalf("+%v: old token: %q %v, want %v", step.advance, v, err, step.oldErr)
		}
		if v, err := e.s.Reveal(ctx, nu); err != nil || string(v) != "1 Rotation Rd" {
			t.Fatalf("+%v: new token: %q %v", step.advance, v, err)
		}
	}
	// Dedupe now answers with the new token; List no longer shows the old one.
	if tok, created, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("1 Rotation Rd"), false, 0); err != nil || tok != nu || created {
		t.Fatalf("register after rotation: %s %v %v", tok, created, err)
	}
	l, _ := e.s.List(ctx, "cardholder:alice")
	for _, x := range l {
		if x.Token == old {
			t.Fatal("expired old token listed")
		}
	}
	// The rotation is in the audit log, and the data stores agree.
	if n, err := store.VerifyAudit(ctx, e.b.Index); err != nil || n != 1 {
		t.Fatalf("audit after rotation: %d %v", n, err)
	}
	if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
		t.Fatalf("check after rotation: %v %v", d, err)
	}
	// Nothing is due right after: new tokens are young.
	if n, err := e.s.Rotate(ctx, 39*day, 7*day); err != nil || n != 0 {
		t.Fatalf("second rotate: %d %v", n, err)
	}
}

func testRotationDuringOutage(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, false)
	old, _, _ := e.s.Register(ctx, "cardholder:alice", store.TypePhone, "", []byte("+44 20 7946 0000"), false, 0)
	e.clk.Add(48 * time.Hour)
	restore := e.outage(t, "primary")
	// The primary is down and there is no backup: nothing to re-seal from.
	if n, err := e.s.Rotate(ctx, time.Hour, time.Hour); !errors.Is(err, store.ErrUnavailable) || n != 0 {
		t.Fatalf("rotate during outage: %d %v", n, err)
	}
	restore()
	if n, err := e.s.Rotate(ctx, time.Hour, time.Hour); err != nil || n != 1 {
		t.Fatalf("rotate: %d %v", n, err)
	}
	if n := pendingCount(t, e.b.Pending); n != 0 {
		t.Fatalf("pending %d", n)
	}
	oe, _ := e.s.Lookup(ctx, old)
	if v, err := e.s.Reveal(ctx, oe.ReplacedBy); err != nil || string(v) != "+44 20 7946 0000" {
		t.Fatalf("%q %v", v, err)
	}
}

// testPendingGrant: a merchant's first grant step checks the token and its
// owner, answers any grant made before as it is (in any state, of any
// merchant), and otherwise adds the grant pending with its audit entry.
func testPendingGrant(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, false)
	tok, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("1 Pending Way"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	shared, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("2 Shared Way"), true, 0)
	if err != nil {
		t.Fatal(err)
	}
	unknown, _ := store.NewToken(store.TypeAddress)
	exp := e.clk.Now().Add(time.Hour)
	grant := func(token, merchant, order, invoice string) store.Grant {
		return store.Grant{Token: token, Merchant: merchant, Carrier: "carrier:fast", OrderID: order, Invoice: invoice, Expires: exp, MaxUses: 3}
	}
	pending := func(g store.Grant, owner string) (store.Grant, bool, error) {
		return e.s.PendingGrant(ctx, g, owner, "grant", g.Merchant, "ok:pending")
	}
	for _, tc := range []struct {
		name  string
		g     store.Grant
		owner string
		want  error
	}{
		{"unknown token", grant(unknown, "merchant:shop", "o-1", "inv"), "cardholder:alice", store.ErrNotFound},
		{"malformed token", grant("tok_nonsense", "merchant:shop", "o-1", "inv"), "cardholder:alice", store.ErrNotFound},
		{"another owner", grant(tok, "merchant:shop", "o-1", "inv"), "cardholder:bob", store.ErrNotOwner},
		{"no invoice", grant(tok, "merchant:shop", "o-1", ""), "cardholder:alice", store.ErrInvalid},
	} {
		if _, _, err := pending(tc.g, tc.owner); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	first, created, err := pending(grant(tok, "merchant:shop", "o-1", "inv-1"), "cardholder:alice")
	if err != nil || !created || first.State != store.GrantPending || first.ID == "" || first.Invoice != "inv-1" {
		t.Fatalf("first: %+v %v %v", first, created, err)
	}
	// A retry with another invoice, and another merchant's request, get
	// the grant made first, as it is.
	for _, g := range []store.Grant{grant(tok, "merchant:shop", "o-1", "inv-2"), grant(tok, "merchant:other", "o-1", "inv-3")} {
		again, created, err := pending(g, "cardholder:alice")
		if err != nil || created || again.ID != first.ID || again.Invoice != "inv-1" || again.Merchant != "merchant:shop" {
			t.Fatalf("again as %s: %+v %v %v, want the first grant", g.Merchant, again, created, err)
		}
	}
	// A shareable token may be granted by anyone's order.
	if _, created, err := pending(grant(shared, "merchant:shop", "o-2", "inv"), "cardholder:bob"); err != nil || !created {
		t.Fatalf("shareable token: %v %v", created, err)
	}
	if n, err := e.s.RevokeGrants(ctx, "merchant:shop", "o-1", "declined"); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if revoked, created, err := pending(grant(tok, "merchant:shop", "o-1", "inv-1"), "cardholder:alice"); err != nil || created || revoked.State != store.GrantRevoked {
		t.Fatalf("after the revocation: %+v %v %v, want the revoked grant", revoked, created, err)
	}
	evs, err := e.b.Index.AuditFind(ctx, "grant", "ok:pending")
	if err != nil || len(evs) != 2 {
		t.Fatalf("%d pending-grant entries (%v), want one per grant made", len(evs), err)
	}
}

func testGrants(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, false)
	tok, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("9 store.Grant Ave"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	exp := e.clk.Now().Add(time.Hour)
	g := store.Grant{Token: tok, Merchant: "merchant:shop", Carrier: "carrier:fast", OrderID: "o-1", Invoice: "inv-1", Expires: exp, MaxUses: 2,
		State: store.GrantActive}
	if err := e.s.AddGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := e.s.AddGrant(ctx, g); err != nil {
		t.Fatalf("same grant again: %v", err)
	}
	changed := g
	changed.Invoice = "inv-2"
	if err := e.s.AddGrant(ctx, changed); !errors.Is(err, store.ErrGrantConflict) {
		t.Fatalf("different grant, same key: %v", err)
	}
	unknown, _ := store.NewToken(store.TypeAddress)
	for name, bad := range map[string]struct {
		g    store.Grant
		want error
	}{
		"unknown token":   {store.Grant{Token: unknown, Merchant: "m", Carrier: "c", OrderID: "o", Invoice: "i", Expires: exp, MaxUses: 1}, store.ErrNotFound},
		"no uses":         {store.Grant{Token: tok, Merchant: "m", Carrier: "c", OrderID: "o", Invoice: "i", Expires: exp}, store.ErrInvalid},
		"no invoice":      {store.Grant{Token: tok, Merchant: "m", Carrier: "c", OrderID: "o", Expires: exp, MaxUses: 1}, store.ErrInvalid},
		"already expired": {store.Grant{Token: tok, Merchant: "m", Carrier: "c", OrderID: "o", Invoice: "i", Expires: e.clk.Now(), MaxUses: 1}, store.ErrGrantExpired},
	} {
		if err := e.s.AddGrant(ctx, bad.g); !errors.Is(err, bad.want) {
			t.Errorf("%s: %v, want %v", name, err, bad.want)
		}
	}

	// A second grant, one use, for the expiry check.
	g2 := g
	g2.OrderID, g2.MaxUses, g2.Expires = "o-2", 5, e.clk.Now().Add(10*time.Minute)
	if err := e.s.AddGrant(ctx, g2); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name                      string
		advance                   time.Duration
		token, carrier, order, in string
		want                      error
		uses                      int
	}{
		{"other carrier", 0, tok, "carrier:slow", "o-1", "inv-1", store.ErrNoGrant, 0},
		{"other order", 0, tok, "carrier:fast", "o-9", "inv-1", store.ErrNoGrant, 0},
		{"other token", 0, unknown, "carrier:fast", "o-1", "inv-1", store.ErrNoGrant, 0},
		{"invoice mismatch", 0, tok, "carrier:fast", "o-1", "inv-X", store.ErrInvoiceMismatch, 0},
		{"first use", 0, tok, "carrier:fast", "o-1", "inv-1", nil, 1},
		{"second use", 0, tok, "carrier:fast", "o-1", "inv-1", nil, 2},
		{"used up", 0, tok, "carrier:fast", "o-1", "inv-1", store.ErrGrantUsedUp, 0},
		{"live before expiry", 9 * time.Minute, tok, "carrier:fast", "o-2", "inv-1", nil, 1},
		{"expired", time.Minute, tok, "carrier:fast", "o-2", "inv-1", store.ErrGrantExpired, 0},
	}
	for _, st := range steps {
		e.clk.Add(st.advance)
		got, err := e.s.UseGrant(ctx, st.token, st.carrier, st.order, st.in)
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.want)
		}
		if err == nil && (got.Uses != st.uses || got.Token != st.token || got.ID == "" || got.Merchant != "merchant:shop") {
			t.Fatalf("%s: grant %+v", st.name, got)
		}
	}
}

func testUseGrantConcurrent(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, false)
	tok, _, _ := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("3 Race Rd"), false, 0)
	if err := e.s.AddGrant(ctx, store.Grant{ID: "g1", Token: tok, Merchant: "m", Carrier: "c", OrderID: "o", Invoice: "i",
		Expires: e.clk.Now().Add(time.Hour), MaxUses: 3, State: store.GrantActive}); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			_, err := e.s.UseGrant(ctx, tok, "c", "o", "i")
			results <- err
		}()
	}
	ok, usedUp := 0, 0
	for i := 0; i < 10; i++ {
		switch err := <-results; {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrGrantUsedUp):
			usedUp++
		default:
			t.Fatal(err)
		}
	}
	if ok != 3 || usedUp != 7 {
		t.Fatalf("%d uses granted, %d refused; want 3 and 7", ok, usedUp)
	}
}

func testAuditChain(t *testing.T, nv NewVault) {
	ctx := context.Background()
	build := func(t *testing.T) *env {
		e := newEnv(t, nv, false)
		for i := 1; i <= 100; i++ {
			e.clk.Add(time.Second)
			if err := e.s.Audit(ctx, "reveal", "carrier:fast", "tok_x", fmt.Sprintf("o-%d", i), "ok"); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	e := build(t)
	if n, err := store.VerifyAudit(ctx, e.b.Index); err != nil || n != 100 {
		t.Fatalf("verify: %d %v", n, err)
	}
	// The chain survives a restart.
	e.reopen(t)
	if n, err := store.VerifyAudit(ctx, e.b.Index); err != nil || n != 100 {
		t.Fatalf("verify after reopen: %d %v", n, err)
	}
	if err := e.s.Audit(ctx, "", "a", "", "", ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty kind: %v", err)
	}
}

// A registration killed between its data write and its index write leaves
// an orphan: Check names it as such (not a disagreement about live data),
// and SweepOrphans deletes it once store.OrphanGrace has passed, from every store,
// leaving indexed records alone.
func testSweepOrphans(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	s := e.s
	live, _, err := s.Register(ctx, "cardholder:alice", store.TypeAddress, "home", []byte(`{"line1":"a"}`), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	orphan := func(token string) store.Record {
		return store.Record{Token: token, Dedupe: []byte("h-" + token), Nonce: make([]byte, 24),
			Sealed: []byte("sealed " + token), Created: e.clk.Now().UnixNano()}
	}
	both := func(r store.Record) error { // as Register writes a record
		if err := e.b.Primary.Put(ctx, r); err != nil {
			return err
		}
		return e.b.Backup.Put(ctx, r)
	}
	// Killed after the primary write only; after both data writes; and one
	// left in the pending table during an outage.
	old1, old2, oldPending := orphan("tok_orphanprimary_adr"), orphan("tok_orphanboth_adr"), orphan("tok_orphanpending_adr")
	if err := e.b.Primary.Put(ctx, old1); err != nil {
		t.Fatal(err)
	}
	if err := both(old2); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Pending.Put(ctx, oldPending); err != nil {
		t.Fatal(err)
	}

	diffs, err := s.Check(ctx)
	if err != nil || len(diffs) != 1 || diffs[0] != (store.Difference{Token: old1.Token, Kind: store.Orphan}) {
		t.Fatalf("check: %+v %v", diffs, err)
	}

	e.clk.Add(store.OrphanGrace / 2)
	young := orphan("tok_orphanyoung_adr")
	if err := both(young); err != nil {
		t.Fatal(err)
	}
	n, next, err := s.SweepOrphans(ctx, 0, store.OrphanGrace)
	if err != nil || n != 0 {
		t.Fatalf("within the grace: swept %d, %v", n, err)
	}
	e.clk.Add(store.OrphanGrace/2 + time.Second)
	n, next, err = s.SweepOrphans(ctx, next, store.OrphanGrace)
	// old1 in primary, old2 in primary and backup, oldPending in pending.
	if err != nil || n != 4 || next == 0 {
		t.Fatalf("swept %d, next %d, %v; want 4 records", n, next, err)
	}
	for _, tok := range []string{old1.Token, old2.Token, oldPending.Token} {
		for name, has := range map[string]func() bool{
			"primary": func() bool { return has(t, e.b.Primary, tok) },
			"backup":  func() bool { return has(t, e.b.Backup, tok) },
			"pending": func() bool { return has(t, e.b.Pending, tok) },
		} {
			if has() {
				t.Errorf("%s still in %s", tok, name)
			}
		}
	}
	if got, err := s.Reveal(ctx, live); err != nil || string(got) != `{"line1":"a"}` {
		t.Fatalf("the live token: %q %v", got, err)
	}
	if !has(t, e.b.Primary, young.Token) {
		t.Fatal("a record younger than the grace was swept")
	}
	// The watermark moves on: the same window is not read again, the
	// young orphan is swept in its turn.
	e.clk.Add(store.OrphanGrace)
	if n, _, err := s.SweepOrphans(ctx, next, store.OrphanGrace); err != nil || n != 2 {
		t.Fatalf("second sweep: %d %v; want the young orphan from both data stores", n, err)
	}
	if diffs, err := s.Check(ctx); err != nil || len(diffs) != 0 {
		t.Fatalf("check after the sweep: %+v %v", diffs, err)
	}
}

// TestPendingDuringOutage takes the primary's directory away (an unmounted
// volume), registers 50 values, and checks that none is lost on the way
// through the pending table.
func testPendingDuringOutage(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	before, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("before the outage"), false, 0)
	if err != nil {
		t.Fatal(err)
	}

	restore := e.outage(t, "primary")
	values := map[string]string{}
	for i := 0; i < 50; i++ {
		v := fmt.Sprintf("%d Outage Lane", i)
		tok, created, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte(v), false, 0)
		if err != nil || !created || tok == "" {
			t.Fatalf("register %d during outage: %q %v %v", i, tok, created, err)
		}
		values[tok] = v
	}
	st, err := e.s.Status(ctx)
	if err != nil || st.PrimaryOK || !st.BackupOK || st.Pending != 100 { // 50 tokens, 50 shared values
		t.Fatalf("status during outage %+v %v", st, err)
	}
	// Pending records reveal and dedupe.
	for tok, v := range values {
		got, err := e.s.Reveal(ctx, tok)
		if err != nil || string(got) != v {
			t.Fatalf("reveal pending %s: %q %v", tok, got, err)
		}
		again, created, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte(v), false, 0)
		if err != nil || again != tok || created {
			t.Fatalf("dedupe against pending: %s %v %v", again, created, err)
		}
		break
	}
	// Older records still reveal, from the backup, and dedupe through it.
	if got, err := e.s.Reveal(ctx, before); err != nil || string(got) != "before the outage" {
		t.Fatalf("reveal during outage: %q %v", got, err)
	}
	if tok, created, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("before the outage"), false, 0); err != nil || tok != before || created {
		t.Fatalf("dedupe through backup: %s %v %v", tok, created, err)
	}
	if n, err := e.s.Flush(ctx); !errors.Is(err, store.ErrUnavailable) || n != 0 {
		t.Fatalf("flush during outage: %d %v", n, err)
	}

	restore()
	moved, err := e.s.Flush(ctx)
	if err != nil || moved != 100 { // 50 records, 50 shared values
		t.Fatalf("flush: moved %d, %v", moved, err)
	}
	if moved, err := e.s.Flush(ctx); err != nil || moved != 0 {
		t.Fatalf("second flush: %d %v", moved, err)
	}
	if n := pendingCount(t, e.b.Pending); n != 0 {
		t.Fatalf("%d records still pending", n)
	}
	for tok, v := range values {
		if !has(t, e.b.Primary, tok) || !has(t, e.b.Backup, tok) {
			t.Fatalf("%s missing after flush", tok)
		}
		got, err := e.s.Reveal(ctx, tok)
		if err != nil || string(got) != v {
			t.Fatalf("reveal %s after flush: %q %v", tok, got, err)
		}
	}
	if n := count(t, e.b.Primary); n != 51 {
		t.Fatalf("primary holds %d records, want 51", n)
	}
	if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
		t.Fatalf("check after flush: %v %v", d, err)
	}
}

// TestFlushStopsMidway: with the backup down, records reach the primary but
// stay pending; nothing is lost and a later Flush finishes the job.
func testFlushStopsMidway(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	restorePrimary := e.outage(t, "primary")
	var toks []string
	for i := 0; i < 10; i++ {
		tok, _, err := e.s.Register(ctx, "cardholder:bob", store.TypePhone, "", []byte(fmt.Sprintf("+1 555 01%02d", i)), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	restorePrimary()
	restoreBackup := e.outage(t, "backup")
	moved, err := e.s.Flush(ctx)
	if !errors.Is(err, store.ErrUnavailable) || moved != 0 {
		t.Fatalf("flush with backup down: %d %v", moved, err)
	}
	if n := pendingCount(t, e.b.Pending); n != 10 {
		t.Fatalf("%d pending after a failed flush, want 10", n)
	}
	if n := recordCount(t, e.b.Primary); n != 1 {
		t.Fatalf("primary holds %d records, want the 1 flushed before the backup failed", n)
	}
	// Registering now writes the primary, fails the backup: pending again.
	tok, _, err := e.s.Register(ctx, "cardholder:bob", store.TypePhone, "", []byte("+1 555 0200"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	toks = append(toks, tok)
	restoreBackup()
	if moved, err := e.s.Flush(ctx); err != nil || moved != 22 { // 11 records and their 11 shared values
		t.Fatalf("flush: %d %v", moved, err)
	}
	if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
		t.Fatalf("check: %v %v", d, err)
	}
	for _, tok := range toks {
		if _, err := e.s.Reveal(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
}

func testRunFlusher(t *testing.T, nv NewVault) {
	ctx, cancel := context.WithCancel(context.Background())
	e := newEnv(t, nv, false)
	restore := e.outage(t, "primary")
	for i := 0; i < 5; i++ {
		if _, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeEmail, "", []byte(fmt.Sprintf("a%d@example.org", i)), false, 0); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		e.s.RunFlusher(ctx, 10*time.Millisecond)
		close(done)
	}()
	time.Sleep(30 * time.Millisecond) // a few failing rounds
	restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.s.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flusher left %d pending", st.Pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestBackupFailover: when the primary loses a record or the whole file,
// Reveal reads the backup.
func testBackupFailover(t *testing.T, nv NewVault) {
	ctx := context.Background()
	tests := []struct {
		name    string
		breakIt func(t *testing.T, e *env, tok string)
	}{
		{"primary unreachable", func(t *testing.T, e *env, tok string) {
			e.outage(t, "primary")
		}},
		{"primary unreachable, vault restarted", func(t *testing.T, e *env, tok string) {
			e.s.Close()
			e.outage(t, "primary")
			e.open(t)
		}},
		{"primary row deleted", func(t *testing.T, e *env, tok string) {
			if err := e.b.Primary.Delete(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
		}},
		{"primary row tampered", func(t *testing.T, e *env, tok string) {
			rewrite(t, e.b.Primary, tok, zeroSealed)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nv, true)
			tok, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeNationalID, "", []byte("AB 12 34 56 C"), false, 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.breakIt(t, e, tok)
			got, err := e.s.Reveal(ctx, tok)
			if err != nil || string(got) != "AB 12 34 56 C" {
				t.Fatalf("reveal from backup: %q %v", got, err)
			}
		})
	}

	t.Run("no backup", func(t *testing.T) {
		e := newEnv(t, nv, false)
		tok, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeNationalID, "", []byte("AB 12 34 56 C"), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		e.outage(t, "primary")
		if _, err := e.s.Reveal(ctx, tok); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("want store.ErrUnavailable, got %v", err)
		}
	})
}

func testCheck(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, true)
	var toks []string
	for i := 0; i < 5; i++ {
		tok, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte(fmt.Sprintf("%d Check St", i)), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	if d, err := e.s.Check(ctx); err != nil || len(d) != 0 {
		t.Fatalf("clean check: %v %v", d, err)
	}
	if err := e.b.Backup.Delete(ctx, toks[1]); err != nil {
		t.Fatal(err)
	}
	rewrite(t, e.b.Backup, toks[3], zeroSealed)
	if err := e.b.Primary.Delete(ctx, toks[4]); err != nil {
		t.Fatal(err)
	}
	d, err := e.s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]store.DiffKind{toks[1]: store.MissingInBackup, toks[3]: store.CiphertextDiffers, toks[4]: store.MissingInPrimary}
	if len(d) != len(want) {
		t.Fatalf("differences %+v, want %v", d, want)
	}
	for _, x := range d {
		if want[x.Token] != x.Kind {
			t.Fatalf("difference %+v, want %v", x, want)
		}
	}
	// Without a backup there is nothing to compare.
	if _, err := newEnv(t, nv, false).s.Check(ctx); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("check without backup: %v", err)
	}
}

// testGrantStates walks a grant through its life (DESIGN.md §7): pending
// reveals nothing, the issuer's approval activates it, revocation ends it
// for good, and every change is in the audit log.
func testGrantStates(t *testing.T, nv NewVault) {
	ctx := context.Background()
	e := newEnv(t, nv, false)
	tok, _, err := e.s.Register(ctx, "cardholder:alice", store.TypeAddress, "", []byte("5 Pending Pl"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	exp := e.clk.Now().Add(time.Hour)
	g := store.Grant{Token: tok, Merchant: "merchant:shop", Carrier: "carrier:fast", OrderID: "o-1", Invoice: "inv-1", Expires: exp, MaxUses: 2}
	if err := e.s.AddGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if got, err := e.b.Index.Grant(ctx, tok, g.Carrier, g.OrderID); err != nil || got.State != store.GrantPending {
		t.Fatalf("a grant added without a state: %+v %v, want pending", got, err)
	}
	if _, err := e.s.UseGrant(ctx, tok, g.Carrier, g.OrderID, g.Invoice); !errors.Is(err, store.ErrGrantPending) {
		t.Fatalf("use of a pending grant: %v, want ErrGrantPending", err)
	}
	if live, err := e.s.LiveGrantsTo(ctx, g.Carrier); err != nil || len(live) != 0 {
		t.Fatalf("LiveGrantsTo with only a pending grant: %+v %v", live, err)
	}
	if _, _, err := e.s.ActivateGrant(ctx, "merchant:other", tok, g.Carrier, g.OrderID); !errors.Is(err, store.ErrNoGrant) {
		t.Fatalf("another merchant activates: %v, want ErrNoGrant", err)
	}
	if _, _, err := e.s.ActivateGrant(ctx, g.Merchant, tok, g.Carrier, "o-9"); !errors.Is(err, store.ErrNoGrant) {
		t.Fatalf("activate a grant that does not exist: %v, want ErrNoGrant", err)
	}
	got, done, err := e.s.ActivateGrant(ctx, g.Merchant, tok, g.Carrier, g.OrderID)
	if err != nil || !done || got.State != store.GrantActive || got.MaxUses != 2 {
		t.Fatalf("activate: %+v %v %v", got, done, err)
	}
	if _, done, err := e.s.ActivateGrant(ctx, g.Merchant, tok, g.Carrier, g.OrderID); err != nil || done {
		t.Fatalf("activate again: %v %v, want a no-op", done, err)
	}
	if live, err := e.s.LiveGrantsTo(ctx, g.Carrier); err != nil || len(live) != 1 || live[0].Token != tok {
		t.Fatalf("LiveGrantsTo: %+v %v", live, err)
	}
	if _, err := e.s.UseGrant(ctx, tok, g.Carrier, g.OrderID, g.Invoice); err != nil {
		t.Fatalf("use of an active grant: %v", err)
	}
	// A second, pending grant of the same order (a deposit, say) is revoked with it.
	g2 := g
	g2.Carrier = "carrier:slow"
	if err := e.s.AddGrant(ctx, g2); err != nil {
		t.Fatal(err)
	}
	other := g
	other.OrderID = "o-2"
	other.State = store.GrantActive
	if err := e.s.AddGrant(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.RevokeGrants(ctx, g.Merchant, "", "declined"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("revoke without an order id: %v", err)
	}
	if n, err := e.s.RevokeGrants(ctx, "merchant:other", g.OrderID, "declined"); err != nil || n != 0 {
		t.Fatalf("another merchant revokes: %d %v, want nothing revoked", n, err)
	}
	if n, err := e.s.RevokeGrants(ctx, g.Merchant, g.OrderID, "failed"); err != nil || n != 2 {
		t.Fatalf("revoke: %d %v, want 2", n, err)
	}
	if n, err := e.s.RevokeGrants(ctx, g.Merchant, g.OrderID, "failed"); err != nil || n != 0 {
		t.Fatalf("revoke again: %d %v, want a no-op", n, err)
	}
	for _, c := range []string{g.Carrier, g2.Carrier} {
		if _, err := e.s.UseGrant(ctx, tok, c, g.OrderID, g.Invoice); !errors.Is(err, store.ErrGrantRevoked) {
			t.Fatalf("use of a revoked grant (%s): %v, want ErrGrantRevoked", c, err)
		}
	}
	if _, err := e.s.UseGrant(ctx, tok, g.Carrier, other.OrderID, g.Invoice); err != nil {
		t.Fatalf("another order's grant after the revocation: %v", err)
	}
	if _, _, err := e.s.ActivateGrant(ctx, g.Merchant, tok, g.Carrier, g.OrderID); !errors.Is(err, store.ErrGrantRevoked) {
		t.Fatalf("activate a revoked grant: %v", err)
	}
	for _, st := range []store.GrantState{store.GrantPending, store.GrantActive} {
		again := g
		again.State = st
		if err := e.s.AddGrant(ctx, again); !errors.Is(err, store.ErrGrantRevoked) {
			t.Fatalf("grant (%s) over a revoked one: %v, want ErrGrantRevoked", st, err)
		}
	}
	bad := g
	bad.OrderID, bad.State = "o-3", store.GrantRevoked
	if err := e.s.AddGrant(ctx, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("add a revoked grant: %v, want ErrInvalid", err)
	}
	if live, err := e.s.LiveGrantsTo(ctx, g.Carrier); err != nil || len(live) != 1 || live[0].OrderID != other.OrderID {
		t.Fatalf("LiveGrantsTo after the revocation: %+v %v", live, err)
	}
	acts, err := e.b.Index.AuditFind(ctx, "grant-activate", "ok")
	if err != nil || len(acts) != 1 || acts[0].Actor != g.Merchant || acts[0].OrderID != g.OrderID {
		t.Fatalf("activation audit: %+v %v", acts, err)
	}
	revs, err := e.b.Index.AuditFind(ctx, "grant-revoke", "revoked:failed")
	if err != nil || len(revs) != 2 {
		t.Fatalf("revocation audit: %+v %v", revs, err)
	}
	if _, err := store.VerifyAudit(ctx, e.b.Index); err != nil {
		t.Fatal(err)
	}
}

// TestAuditGroupCommit: audit entries of concurrent calls (reveals, each
// waiting for its entry before it answers) queued while the committer is
// busy commit in one index transaction, in one chain that verifies; and a
// failing index transaction fails every call of its batch and writes none
// of them.
func testAuditGroupCommit(t *testing.T, nv NewVault) {
	ctx := context.Background()
	for _, fail := range []bool{false, true} {
		synctestRun(t, fmt.Sprintf("failing index %v", fail), func(t *testing.T) {
			e, f := newFaultEnv(t, nv, false)
			f.hold() // the committer stalls in the gate registration's batch
			gateDone := make(chan error, 1)
			go func() {
				_, _, err := e.s.Register(ctx, "cardholder:gate", store.TypeEmail, "", []byte("gate@example.org"), false, 0)
				gateDone <- err
			}()
			synctest.Wait()
			before := f.updates.Load()
			const calls = 24
			errs := make([]error, calls)
			var wg sync.WaitGroup
			for i := range calls {
				wg.Go(func() {
					if i%2 == 0 {
						errs[i] = e.s.Audit(ctx, "reveal", fmt.Sprintf("cardholder:c%d", i), "tok", "", "ok")
					} else {
						errs[i] = e.s.AuditBatch(ctx, []store.AuditEvent{{Kind: "reveal-batch", Actor: fmt.Sprintf("cardholder:c%d", i), Token: "t1", Outcome: "ok"},
							{Kind: "reveal-batch", Actor: fmt.Sprintf("cardholder:c%d", i), Token: "t2", Outcome: "ok"}})
					}
				})
				synctest.Wait() // queued, handing its events over
			}
			f.fail.Store(fail)
			f.release()
			wg.Wait()
			f.fail.Store(false)
			if err := <-gateDone; (err != nil) != fail {
				t.Fatalf("the gate's registration: %v (failing index: %v)", err, fail)
			}
			if n := f.updates.Load() - before; n != 2 {
				t.Fatalf("%d index transactions for the gate and %d audit calls, want 2", n, calls)
			}
			for i, err := range errs {
				if (err != nil) != fail {
					t.Fatalf("call %d: %v (failing index: %v)", i, err, fail)
				}
			}
			n, err := store.VerifyAudit(ctx, e.b.Index)
			want := calls/2 + 2*calls/2 // one entry per Audit, two per AuditBatch
			if fail {
				want = 0
			}
			if err != nil || n != want {
				t.Fatalf("audit verifies %d entries (%v), want %d", n, err, want)
			}
			// The checkpoint that follows signs the log's head: the last
			// entry the commit appended, known without reading the log.
			synctest.Wait()
			seq, head, err := e.b.Index.AuditHead(ctx)
			if cp := e.s.LatestCheckpoint(); err != nil || cp.Seq != seq || !bytes.Equal(cp.Head, head) {
				t.Fatalf("checkpoint at %d %x, log head %d %x (%v)", cp.Seq, cp.Head, seq, head, err)
			}
		})
	}
}
