package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"orderseal/internal/cli"
	"orderseal/internal/sqlitex"
	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/vault"
	"orderseal/vault/api"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlite"
)

// verifyCLI runs 'merchant vault audit verify' and returns its exit code,
// stdout and stderr.
func verifyCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := vault.Command(context.Background(), "merchant", append([]string{"audit", "verify"}, args...), cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	var ce *cli.Error
	if errors.As(err, &ce) && errors.Is(err, cli.ErrReported) {
		return ce.Code, out.String(), errb.String()
	}
	return cli.Report("merchant vault", &errb, err), out.String(), errb.String()
}

// busyVault fills e with audited work: alice's address granted to the
// carrier and revealed once, then extra registrations (one entry each).
func busyVault(t *testing.T, e *vaultEnv, extra int) {
	t.Helper()
	ctx := context.Background()
	alice, shop, parcel := e.client(t, keys.Alice), e.client(t, keys.Shop), e.client(t, keys.Parcel)
	home := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	b := bundleFor(t, keys.Alice, home, order.SealOptions{GrantUses: 2})
	if _, err := shop.Grant(ctx, b, "INV-1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := shop.Grant(ctx, b, "INV-1", approve(t, b)); err != nil {
		t.Fatal(err)
	}
	if _, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil {
		t.Fatal(err)
	}
	for i := range extra {
		if _, _, err := e.st.RegisterAudited(ctx, keys.Bob, store.TypePhone, fmt.Sprintf("p%d", i), fmt.Appendf(nil, "+4917%08d", i), false, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// tamperedCopy copies the stopped vault's index, data and backup files to
// a fresh directory, runs sql on the index copy (nil: none) and returns
// the copies' paths.
func tamperedCopy(t *testing.T, e *vaultEnv, stmts ...string) (index, data, backup string) {
	t.Helper()
	dir := t.TempDir()
	cp := func(src string) string {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	index, data, backup = cp(e.indexPath), cp(e.dataPath), cp(e.backupPath)
	if len(stmts) > 0 {
		db, err := sqlitex.Open(index, sqlitex.MustExist())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	return index, data, backup
}

// TestAuditAnchored is issue 22 items 3: the audit head is checkpointed
// in the backup data store, and 'audit verify' reports every way of
// cutting the log's end, a damaged file, and grants or reveals the log does
// not account for, each with exit code 1 and a message naming it.
func TestAuditAnchored(t *testing.T) {
	e := newVaultEnv(t)
	busyVault(t, e, 600)
	head := e.st.LatestCheckpoint()
	if head.Seq < 600 {
		t.Fatalf("checkpoint at entry %d after 600+ audited changes", head.Seq)
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(e.dir, "data.key")
	cp, ok, err := sqlite.ReadCheckpoint(context.Background(), e.backupPath)
	if err != nil || !ok || cp.Seq != head.Seq {
		t.Fatalf("backup checkpoint %+v %v %v, want entry %d", cp, ok, err, head.Seq)
	}

	tests := []struct {
		name   string
		stmts  []string
		edit   func(t *testing.T, index, backup string)
		anchor func(data, backup string) []string // verify's checkpoint flags; nil: -backup
		code   int
		want   string
	}{
		{name: "intact", code: 0, want: fmt.Sprintf("audit chain verifies: %d entries, matching 1 checkpoints", head.Seq)},
		{name: "the last entry deleted", stmts: []string{`DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)`},
			code: 1, want: fmt.Sprintf("the log ends at entry %d, but the checkpoint in the backup data store", head.Seq-1)},
		{name: "the last 500 entries deleted", stmts: []string{`DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 500 FROM audit)`},
			code: 1, want: "500 newest entries deleted"},
		{name: "the last entry rewritten", stmts: []string{`UPDATE audit SET outcome = 'forged' WHERE seq = (SELECT MAX(seq) FROM audit)`},
			code: 1, want: "hash mismatch"},
		{name: "file shortened by 100 bytes", edit: func(t *testing.T, index, _ string) {
			st, err := os.Stat(index)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(index, st.Size()-100); err != nil {
				t.Fatal(err)
			}
		}, code: 1, want: "database file is damaged"},
		{name: "a grant without its audit entry", stmts: []string{
			`INSERT INTO grants (id, token, merchant, carrier, order_id, invoice, expires, max_uses, uses, created, state)
			 SELECT 'grt_forged', token, merchant, carrier, 'ord_forged', invoice, expires, 5, 0, created, 'active' FROM grants LIMIT 1`},
			code: 1, want: "grant grt_forged (order ord_forged"},
		{name: "reveals counted without entries", stmts: []string{`UPDATE grants SET uses = 2`},
			code: 1, want: "counts 2 reveals, the audit log 1"},
		{name: "the backup's checkpoint removed too", stmts: []string{`DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)`},
			edit: func(t *testing.T, _, backup string) {
				db, err := sqlitex.Open(backup, sqlitex.MustExist())
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec(`DELETE FROM meta WHERE k = 'audit_checkpoint'`); err != nil {
					t.Fatal(err)
				}
			}, code: 1, want: "no checkpoint in the stores given"},
		{name: "the checkpoint names another head", edit: func(t *testing.T, _, backup string) {
			db, err := sqlitex.Open(backup, sqlitex.MustExist())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`UPDATE meta SET v = CAST(json_set(v, '$.seq', json_extract(v, '$.seq') - 1) AS BLOB) WHERE k = 'audit_checkpoint'`); err != nil {
				t.Fatal(err)
			}
		}, code: 1, want: "does not verify under this data key"},
		{name: "no checkpoint to compare with", anchor: func(string, string) []string { return nil }, code: 2, want: "no audit checkpoint to compare the log with"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			index, data, backup := tamperedCopy(t, e, tc.stmts...)
			if tc.edit != nil {
				tc.edit(t, index, backup)
			}
			args := []string{"-index", index, "-data-key", key}
			if tc.anchor != nil {
				args = append([]string{"-index", index}, tc.anchor(data, backup)...)
			} else {
				args = append(args, "-backup", backup)
			}
			code, out, errs := verifyCLI(t, args...)
			if code != tc.code || !strings.Contains(out+errs, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, tc.code, tc.want, out, errs)
			}
			if code != 0 && strings.Count(strings.TrimSpace(errs), "\n") > 1 {
				t.Fatalf("not a one-line error:\n%s", errs)
			}
		})
	}
}

// TestAuditCutWhileRunning: entries deleted from the index under the
// running vault are caught at its next audited change: nothing of that
// change commits, the reveal it would record is refused without its value,
// every later one too, and 'audit verify' reports the cut.
func TestAuditCutWhileRunning(t *testing.T) {
	ctx := context.Background()
	e := newVaultEnv(t)
	busyVault(t, e, 20)
	alice := e.client(t, keys.Alice)
	list, err := alice.List(ctx)
	if err != nil || len(list) == 0 {
		t.Fatalf("list %v %v", list, err)
	}
	home := list[0].Token
	before := e.st.LatestCheckpoint().Seq

	db, err := sqlitex.Open(e.indexPath, sqlitex.MustExist())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 5 FROM audit)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for range 2 {
		_, err := alice.RevealOwn(ctx, home)
		p := wantProblem(t, err, "vault-unavailable")
		if p.Status != http.StatusServiceUnavailable {
			t.Fatalf("reveal after the cut: %+v", p)
		}
	}
	if x := e.rec.last(t, keys.Alice); bytes.Contains(x.respBody, []byte(`"value"`)) {
		t.Fatalf("the refused reveal carried a value: %s", x.respBody)
	}
	if !strings.Contains(string(e.log.Bytes()), "vault audit log is behind its checkpoint") {
		t.Fatalf("no error logged:\n%s", e.log.Bytes())
	}
	idx, err := vault.OpenIndexReader(ctx, e.indexPath)
	if err != nil {
		t.Fatal(err)
	}
	seq, _, err := idx.AuditHead(ctx)
	idx.Close()
	if err != nil || seq != before-5 {
		t.Fatalf("head %d %v after the cut, want %d: the refused reveals appended entries", seq, err, before-5)
	}
	code, out, errs := verifyCLI(t, "-index", e.indexPath, "-data-key", filepath.Join(e.dir, "data.key"), "-backup", e.backupPath)
	if code != 1 || !strings.Contains(errs, "5 newest entries deleted") {
		t.Fatalf("verify beside the running vault: exit %d\n%s%s", code, out, errs)
	}

	// Restarted on the cut index, the vault refuses to start.
	e.st.Close()
	dk, err := store.LoadDataKey(filepath.Join(e.dir, "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = vault.OpenStore(ctx, vault.StoreConfig{Index: e.indexPath, Data: e.dataPath, Backup: e.backupPath, DataKey: dk})
	if !errors.Is(err, store.ErrAuditBroken) || !strings.Contains(err.Error(), "5 newest entries deleted") {
		t.Fatalf("start on a cut index: %v", err)
	}
}

// failingIndex is the real index whose Update fails while fail is set: the
// audit append of a reveal cannot be written.
type failingIndex struct {
	store.Index
	fail    atomic.Bool
	failNth atomic.Int32 // > 0: the Update that brings it to 0 fails (a kill between two commits)
}

var errInjected = errors.New("injected: disk I/O error")

func (f *failingIndex) Update(ctx context.Context, fn func(tx store.IndexTx) error) error {
	if f.fail.Load() || f.failNth.Add(-1) == 0 {
		return errInjected
	}
	return f.Index.Update(ctx, fn)
}

// failingVault is a vault env over a failingIndex.
func failingVault(t *testing.T) (*vaultEnv, *failingIndex) {
	t.Helper()
	ctx := context.Background()
	e := newVaultEnv(t)
	e.st.Close()
	dk, err := store.LoadDataKey(filepath.Join(e.dir, "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	check, err := store.KeyCheck(dk)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := sqlite.OpenIndex(ctx, e.indexPath)
	if err != nil {
		t.Fatal(err)
	}
	fi := &failingIndex{Index: idx}
	pend, err := sqlite.OpenPending(ctx, e.indexPath+".pending", check)
	if err != nil {
		t.Fatal(err)
	}
	primary, err := sqlite.OpenData(ctx, e.dataPath, "primary", check, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Backends{Index: fi, Primary: primary, Pending: pend}, store.Options{DataKey: dk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	e.srv = vault.NewServer(keys.Keys(t, keys.Vault), st, vault.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.ts.Config.Handler = e.srv.Handler()
	return e, fi
}

// TestGrantCommitsWithItsAuditEntry: a grant and its audit entry are one
// commit. The index write after the grant's fails (as a vault killed
// between two commits leaves it), and still every grant has its entry
// (make chaos found grants without one).
func TestGrantCommitsWithItsAuditEntry(t *testing.T) {
	ctx := context.Background()
	e, fi := failingVault(t)
	alice, shop := e.client(t, keys.Alice), e.client(t, keys.Shop)
	home := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	b := bundleFor(t, keys.Alice, home, order.SealOptions{})
	fi.failNth.Store(2)
	shop.Grant(ctx, b, "INV-1", "") // whatever the answer: the merchant retries
	fi.failNth.Store(0)
	if _, err := shop.Grant(ctx, b, "INV-1", ""); err != nil {
		t.Fatalf("the merchant's retry: %v", err)
	}
	problems, err := store.CrossCheck(ctx, fi.Index)
	if err != nil || len(problems) != 0 {
		t.Fatalf("cross-check: %v %v", problems, err)
	}
}

// TestRevealFailsClosed is issue 22 item 8: when the audit entry of a
// reveal cannot be written, the reveal is refused (503) and its answer
// carries no value, for the owner's reveal and the carrier's granted one.
func TestRevealFailsClosed(t *testing.T) {
	ctx := context.Background()
	e, fi := failingVault(t)

	alice, shop, parcel := e.client(t, keys.Alice), e.client(t, keys.Shop), e.client(t, keys.Parcel)
	home := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	b := bundleFor(t, keys.Alice, home, order.SealOptions{GrantUses: 3})
	if _, err := shop.Grant(ctx, b, "INV-1", approve(t, b)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RevealOwn(ctx, home); err != nil {
		t.Fatalf("reveal with a working audit log: %v", err)
	}

	fi.fail.Store(true)
	reveals := []struct {
		who  string
		call func() ([]byte, error)
	}{
		{keys.Alice, func() ([]byte, error) { return alice.RevealOwn(ctx, home) }},
		{keys.Parcel, func() ([]byte, error) { return parcel.RevealGranted(ctx, home, b.OrderID, "INV-1") }},
	}
	for _, r := range reveals {
		v, err := r.call()
		p := wantProblem(t, err, "vault-unavailable")
		if v != nil || p.Status != http.StatusServiceUnavailable {
			t.Fatalf("%s's reveal with a failing audit log: %q %+v", r.who, v, p)
		}
		x := e.rec.last(t, r.who)
		if x.status != http.StatusServiceUnavailable || bytes.Contains(x.respBody, []byte(`"value"`)) || bytes.Contains(x.respBody, []byte(canary)) {
			t.Fatalf("%s got HTTP %d %s", r.who, x.status, x.respBody)
		}
	}
	fi.fail.Store(false)
	if _, err := alice.RevealOwn(ctx, home); err != nil {
		t.Fatalf("reveal once the audit log works again: %v", err)
	}
}
