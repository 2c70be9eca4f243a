package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRotationAndGrace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	const day = 24 * time.Hour
	old, _, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "home", []byte("1 Rotation Rd"), true, 365*day)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(10 * day)
	young, _, _ := e.s.Register(ctx, "cardholder:alice", TypeAddress, "work", []byte("2 Young Rd"), false, 0)

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
	if ne.Owner != oe.Owner || ne.Type != TypeAddress || ne.Label != "home" || !ne.Shareable || ne.Epoch != 2 ||
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
		{2 * day, ErrExpired}, // 8 days after rotation: past the 7-day grace
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
	if tok, created, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte("1 Rotation Rd"), false, 0); err != nil || tok != nu || created {
		t.Fatalf("register after rotation: %s %v %v", tok, created, err)
	}
	l, _ := e.s.List(ctx, "cardholder:alice")
	for _, x := range l {
		if x.Token == old {
			t.Fatal("expired old token listed")
		}
	}
	// The rotation is in the audit log, and the data stores agree.
	if n, err := VerifyAudit(ctx, e.indexPath); err != nil || n != 1 {
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

func TestRotationDuringOutage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	old, _, _ := e.s.Register(ctx, "cardholder:alice", TypePhone, "", []byte("+44 20 7946 0000"), false, 0)
	e.clk.Add(48 * time.Hour)
	pend := rawDB(t, e.cfg.IndexPath+".pending")
	restore := outage(t, e.primaryDir)
	// The primary is down and there is no backup: nothing to re-seal from.
	if n, err := e.s.Rotate(ctx, time.Hour, time.Hour); !errors.Is(err, ErrUnavailable) || n != 0 {
		t.Fatalf("rotate during outage: %d %v", n, err)
	}
	restore()
	if n, err := e.s.Rotate(ctx, time.Hour, time.Hour); err != nil || n != 1 {
		t.Fatalf("rotate: %d %v", n, err)
	}
	if n := pend.count("pending"); n != 0 {
		t.Fatalf("pending %d", n)
	}
	oe, _ := e.s.Lookup(ctx, old)
	if v, err := e.s.Reveal(ctx, oe.ReplacedBy); err != nil || string(v) != "+44 20 7946 0000" {
		t.Fatalf("%q %v", v, err)
	}
}

func TestGrants(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	tok, _, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte("9 Grant Ave"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	exp := e.clk.Now().Add(time.Hour)
	g := Grant{Token: tok, Merchant: "merchant:shop", Carrier: "carrier:fast", OrderID: "o-1", Invoice: "inv-1", Expires: exp, MaxUses: 2}
	if err := e.s.AddGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := e.s.AddGrant(ctx, g); err != nil {
		t.Fatalf("same grant again: %v", err)
	}
	changed := g
	changed.Invoice = "inv-2"
	if err := e.s.AddGrant(ctx, changed); !errors.Is(err, ErrGrantConflict) {
		t.Fatalf("different grant, same key: %v", err)
	}
	unknown, _ := NewToken(TypeAddress)
	for name, bad := range map[string]struct {
		g    Grant
		want error
	}{
		"unknown token":   {Grant{Token: unknown, Merchant: "m", Carrier: "c", OrderID: "o", Invoice: "i", Expires: exp, MaxUses: 1}, ErrNotFound},
		"no uses":         {Grant{Token: tok, Merchant: "m", Carrier: "c", OrderID: "o", Invoice: "i", Expires: exp}, ErrInvalid},
		"no invoice":      {Grant{Token: tok, Merchant: "m", Carrier: "c", OrderID: "o", Expires: exp, MaxUses: 1}, ErrInvalid},
		"already expired": {Grant{Token: tok, Merchant: "m", Carrier: "c", OrderID: "o", Invoice: "i", Expires: e.clk.Now(), MaxUses: 1}, ErrGrantExpired},
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
		{"other carrier", 0, tok, "carrier:slow", "o-1", "inv-1", ErrNoGrant, 0},
		{"other order", 0, tok, "carrier:fast", "o-9", "inv-1", ErrNoGrant, 0},
		{"other token", 0, unknown, "carrier:fast", "o-1", "inv-1", ErrNoGrant, 0},
		{"invoice mismatch", 0, tok, "carrier:fast", "o-1", "inv-X", ErrInvoiceMismatch, 0},
		{"first use", 0, tok, "carrier:fast", "o-1", "inv-1", nil, 1},
		{"second use", 0, tok, "carrier:fast", "o-1", "inv-1", nil, 2},
		{"used up", 0, tok, "carrier:fast", "o-1", "inv-1", ErrGrantUsedUp, 0},
		{"live before expiry", 9 * time.Minute, tok, "carrier:fast", "o-2", "inv-1", nil, 1},
		{"expired", time.Minute, tok, "carrier:fast", "o-2", "inv-1", ErrGrantExpired, 0},
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

func TestUseGrantConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	tok, _, _ := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte("3 Race Rd"), false, 0)
	if err := e.s.AddGrant(ctx, Grant{ID: "g1", Token: tok, Merchant: "m", Carrier: "c", OrderID: "o", Invoice: "i",
		Expires: e.clk.Now().Add(time.Hour), MaxUses: 3}); err != nil {
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
		case errors.Is(err, ErrGrantUsedUp):
			usedUp++
		default:
			t.Fatal(err)
		}
	}
	if ok != 3 || usedUp != 7 {
		t.Fatalf("%d uses granted, %d refused; want 3 and 7", ok, usedUp)
	}
}

func TestAuditChain(t *testing.T) {
	ctx := context.Background()
	build := func(t *testing.T) *env {
		e := newEnv(t, false)
		for i := 1; i <= 100; i++ {
			e.clk.Add(time.Second)
			if err := e.s.Audit(ctx, "reveal", "carrier:fast", "tok_x", fmt.Sprintf("o-%d", i), "ok"); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	e := build(t)
	if n, err := VerifyAudit(ctx, e.indexPath); err != nil || n != 100 {
		t.Fatalf("verify: %d %v", n, err)
	}
	// Verification works on a closed vault too, read-only.
	e.s.Close()
	e.s = nil
	if n, err := VerifyAudit(ctx, e.indexPath); err != nil || n != 100 {
		t.Fatalf("verify closed: %d %v", n, err)
	}
	e.open(t)
	if err := e.s.Audit(ctx, "", "a", "", "", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty kind: %v", err)
	}

	tamper := []struct {
		name string
		sql  []string
		want string
	}{
		{"edit outcome", []string{`UPDATE audit SET outcome = 'denied' WHERE seq = 17`}, "entry 17: hash mismatch"},
		{"edit time", []string{`UPDATE audit SET time = time + 1 WHERE seq = 17`}, "entry 17: hash mismatch"},
		{"delete row", []string{`DELETE FROM audit WHERE seq = 17`}, "entry 17: missing"},
		{"swap rows", []string{
			`UPDATE audit SET seq = -1 WHERE seq = 17`,
			`UPDATE audit SET seq = 17 WHERE seq = 18`,
			`UPDATE audit SET seq = 18 WHERE seq = -1`,
		}, "entry 17: hash mismatch"},
		{"rewrite entry and its hash", []string{
			`UPDATE audit SET outcome = 'denied' WHERE seq = 17`,
			// An attacker who recomputes entry 17's hash still breaks 18's link.
		}, "entry 18: does not follow entry 17"},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			e := build(t)
			raw := rawDB(t, e.indexPath)
			for _, q := range tc.sql {
				raw.exec(q)
			}
			if tc.name == "rewrite entry and its hash" {
				rehash(t, raw, 17)
			}
			n, err := VerifyAudit(ctx, e.indexPath)
			if !errors.Is(err, ErrAuditBroken) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if n != 16 && !strings.Contains(tc.want, "entry 18") {
				t.Fatalf("verified %d before the break, want 16", n)
			}
		})
	}
}

// rehash recomputes entry seq's hash the way an attacker with the file would.
func rehash(t *testing.T, raw *sqlDB, seq int64) {
	t.Helper()
	ev := AuditEvent{}
	var tm int64
	if err := raw.QueryRow(`SELECT seq, time, kind, actor, token, order_id, outcome, prev FROM audit WHERE seq = ?`, seq).
		Scan(&ev.Seq, &tm, &ev.Kind, &ev.Actor, &ev.Token, &ev.OrderID, &ev.Outcome, &ev.Prev); err != nil {
		t.Fatal(err)
	}
	ev.Time = time.Unix(0, tm)
	raw.exec(`UPDATE audit SET hash = ? WHERE seq = ?`, auditHash(ev), seq)
}

func TestVerifyAuditMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.db")
	if _, err := VerifyAudit(context.Background(), p); err == nil {
		t.Fatal("verified a missing file")
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("VerifyAudit created the file")
	}
}
