package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/internal/secfile"
)

func TestTokens(t *testing.T) {
	seen := map[string]bool{}
	for _, typ := range []TokenType{TypeAddress, TypePhone, TypeNationalID, TypeEmail} {
		for i := 0; i < 250; i++ {
			tok, err := NewToken(typ)
			if err != nil {
				t.Fatal(err)
			}
			if len(tok) != TokenLen || !strings.HasPrefix(tok, "tok_") || !strings.HasSuffix(tok, "_"+string(typ)) {
				t.Fatalf("bad token %q", tok)
			}
			if seen[tok] {
				t.Fatalf("token repeated: %s", tok)
			}
			seen[tok] = true
			got, err := ParseTokenType(tok)
			if err != nil || got != typ {
				t.Fatalf("ParseTokenType(%s) = %q, %v", tok, got, err)
			}
		}
	}
	if _, err := NewToken("xyz"); !errors.Is(err, ErrTokenType) {
		t.Fatalf("unknown type: %v", err)
	}
	good, _ := NewToken(TypeAddress)
	bad := map[string]string{
		"empty":         "",
		"prefix":        "tak_" + good[4:],
		"upper":         strings.ToUpper(good[:30]) + good[30:],
		"type":          good[:len(good)-3] + "xyz",
		"short":         good[:len(good)-1],
		"separator":     good[:30] + "-" + good[31:],
		"alphabet":      "tok_" + strings.Repeat("1", 26) + "_adr",
		"non-canonical": "tok_" + strings.Repeat("a", 25) + "b_adr", // last char carries 3 bits, its low 2 must be 0
	}
	for name, tok := range bad {
		if _, err := ParseTokenType(tok); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %q accepted: %v", name, tok, err)
		}
	}
}

func TestDataKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data.key")
	k, err := CreateDataKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode(), err)
	}
	if _, err := CreateDataKey(p); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateDataKey overwrote a key: %v", err)
	}
	k2, err := LoadDataKey(p)
	if err != nil || !k.Equal(k2) {
		t.Fatalf("reload: %v", err)
	}
	if s := fmt.Sprintf("%v %s", k, k); strings.Contains(s, strings.TrimSpace(readFile(t, p))) {
		t.Fatal("key printed")
	}
	other, _ := CreateDataKey(filepath.Join(dir, "other.key"))
	if k.Equal(other) {
		t.Fatal("two fresh keys are equal")
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(p, mode)
		if _, err := LoadDataKey(p); !errors.Is(err, secfile.ErrPermissions) {
			t.Fatalf("mode %o: want ErrPermissions, got %v", mode, err)
		}
	}
	os.Chmod(p, 0o600)

	for name, content := range map[string]string{
		"short":    "AAAA\n",
		"garbage":  "not base64 at all!!\n",
		"padded":   strings.Repeat("A", 43) + "=\n",
		"too long": strings.Repeat("A", 60) + "\n",
	} {
		q := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(q, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadDataKey(q); !errors.Is(err, ErrBadDataKey) {
			t.Errorf("%s: want ErrBadDataKey, got %v", name, err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRegisterDedupe(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	base, created, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "home", []byte("1 Main St"), false, 0)
	if err != nil || !created {
		t.Fatalf("register: %v created=%v", err, created)
	}
	tests := []struct {
		name  string
		owner string
		typ   TokenType
		value string
		same  bool
	}{
		{"same owner, type and value", "cardholder:alice", TypeAddress, "1 Main St", true},
		{"different owner", "cardholder:bob", TypeAddress, "1 Main St", false},
		{"different type", "cardholder:alice", TypePhone, "1 Main St", false},
		{"different value", "cardholder:alice", TypeAddress, "2 Main St", false},
		{"owner/value boundary", "cardholder:alice1", TypeAddress, " Main St", false},
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
			if typ, _ := ParseTokenType(tok); typ != tc.typ {
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
	if tok, created, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte("1 Main St"), false, 0); err != nil || tok != base || created {
		t.Fatalf("after reopen: %s %v %v", tok, created, err)
	}
	// An expired token is never handed out again: the same value gets a new one.
	tok, _, err := e.s.Register(ctx, "cardholder:carol", TypeEmail, "", []byte("c@example.org"), false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(2 * time.Hour)
	if tok2, created, err := e.s.Register(ctx, "cardholder:carol", TypeEmail, "", []byte("c@example.org"), false, time.Hour); err != nil || tok2 == tok || !created {
		t.Fatalf("after expiry: %s %v %v", tok2, created, err)
	}
}

func TestRegisterRejects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	tests := []struct {
		name  string
		owner string
		typ   TokenType
		label string
		value []byte
		ttl   time.Duration
		want  error
	}{
		{"no owner", "", TypeAddress, "", []byte("v"), 0, ErrInvalid},
		{"bad type", "o", "zip", "", []byte("v"), 0, ErrTokenType},
		{"empty value", "o", TypeAddress, "", nil, 0, ErrInvalid},
		{"huge value", "o", TypeAddress, "", make([]byte, MaxValueLen+1), 0, ErrInvalid},
		{"control in label", "o", TypeAddress, "a\nb", []byte("v"), 0, ErrInvalid},
		{"long label", "o", TypeAddress, strings.Repeat("l", MaxLabelLen+1), []byte("v"), 0, ErrInvalid},
		{"negative ttl", "o", TypeAddress, "", []byte("v"), -time.Second, ErrInvalid},
	}
	for _, tc := range tests {
		if _, _, err := e.s.Register(ctx, tc.owner, tc.typ, tc.label, tc.value, false, tc.ttl); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestConcurrentRegisterDedupes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	var wg sync.WaitGroup
	toks := make([]string, 8)
	errs := make([]error, 8)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], _, errs[i] = e.s.Register(ctx, "cardholder:alice", TypeAddress, "", []byte("same place"), false, 0)
		}()
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("goroutine %d: %s %v (first %s)", i, toks[i], errs[i], toks[0])
		}
	}
}

func TestNoPIIAtRest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	canary := []byte("CANARY-7f3a 221B Baker Street")
	tok, _, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "home", canary, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	// One more through the pending table, so its file holds a record too.
	restore := outage(t, e.primaryDir)
	pendingCanary := []byte("CANARY-9c1d 742 Evergreen Terrace")
	ptok, _, err := e.s.Register(ctx, "cardholder:alice", TypeAddress, "work", pendingCanary, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if entries, err := e.s.List(ctx, "cardholder:alice"); err != nil || len(entries) != 2 {
		t.Fatalf("List: %v %v", entries, err)
	}
	scan := func(when string) {
		n := 0
		filepath.Walk(e.dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n++
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: mode %04o, want no group or other access", p, fi.Mode().Perm())
			}
			for _, c := range [][]byte{canary, pendingCanary} {
				if bytes.Contains(b, c) {
					t.Errorf("%s: %s holds the canary %q in clear", when, p, c)
				}
			}
			return nil
		})
		if n < 5 {
			t.Fatalf("%s: scanned only %d files", when, n)
		}
	}
	scan("open") // -wal files included
	restore()
	if _, err := e.s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.s.Close()
	e.s = nil
	scan("closed")

	// The index never holds a value, sealed or not: only the token columns.
	e.open(t)
	for _, tk := range []string{tok, ptok} {
		v, err := e.s.Reveal(ctx, tk)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v, canary) && !bytes.Equal(v, pendingCanary) {
			t.Fatalf("reveal %q", v)
		}
	}
	idx := rawDB(t, e.indexPath)
	rows, err := idx.Query(`SELECT name FROM pragma_table_info('entries')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	if got := strings.Join(cols, ","); got != "token,owner,type,label,epoch,created,expires,shareable,replaced_by" {
		t.Fatalf("index columns %s", got)
	}
}

func TestRevealAndLookup(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	tok, _, err := e.s.Register(ctx, "cardholder:alice", TypePhone, "mobile", []byte("+1 555 0100"), true, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := e.s.Register(ctx, "cardholder:alice", TypePhone, "work", []byte("+1 555 0199"), false, 0)
	v, err := e.s.Reveal(ctx, tok)
	if err != nil || string(v) != "+1 555 0100" {
		t.Fatalf("Reveal %q %v", v, err)
	}
	en, err := e.s.Lookup(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Token: tok, Owner: "cardholder:alice", Type: TypePhone, Label: "mobile", Epoch: 1,
		Created: e.clk.Now(), Expires: e.clk.Now().Add(24 * time.Hour), Shareable: true}
	if en != want {
		t.Fatalf("Lookup\n got %+v\nwant %+v", en, want)
	}

	missing, _ := NewToken(TypePhone)
	for _, tk := range []string{missing, "tok_nope", ""} {
		if _, err := e.s.Reveal(ctx, tk); !errors.Is(err, ErrNotFound) {
			t.Errorf("Reveal(%q): %v", tk, err)
		}
		if _, err := e.s.Lookup(ctx, tk); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup(%q): %v", tk, err)
		}
	}

	// A ciphertext moved to another token fails: AAD binds it to its token.
	raw := rawDB(t, e.dataPath)
	raw.exec(`UPDATE records SET nonce = (SELECT nonce FROM records WHERE token = ?), ct = (SELECT ct FROM records WHERE token = ?) WHERE token = ?`, tok, tok, other)
	if _, err := e.s.Reveal(ctx, other); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("moved ciphertext: %v", err)
	}

	e.clk.Add(25 * time.Hour)
	if _, err := e.s.Reveal(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("after ttl: %v", err)
	}
	if l, _ := e.s.List(ctx, "cardholder:alice"); len(l) != 1 || l[0].Token != other {
		t.Fatalf("List after expiry: %+v", l)
	}
}

func TestOpenRefusesWrongKey(t *testing.T) {
	e := newEnv(t, true)
	e.s.Close()
	e.s = nil
	k, err := CreateDataKey(filepath.Join(e.dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.DataKey = k
	if s, err := Open(context.Background(), cfg); !errors.Is(err, ErrWrongKey) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("want ErrWrongKey, got %v", err)
	}
	cfg = e.cfg
	cfg.BackupPath = cfg.DataPath
	if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrInvalid) {
		t.Fatalf("same file twice: %v", err)
	}
}
