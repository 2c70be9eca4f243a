package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"orderseal/cardholder"
	"orderseal/internal/cli"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/internal/sqlitex"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/vault"
	"orderseal/vault/api"
)

// Identities the vault tests play.
const (
	vAlice        = "cardholder:alice@example.org"
	vBob          = "cardholder:bob@example.org"
	vShop         = "merchant:shop.example"
	vOtherShop    = "merchant:other.example"
	vParcel       = "carrier:parcel.example"
	vOtherCarrier = "carrier:other.example"
	vBank         = "issuer:bank.example"
	vVault        = "vault:vault.shop.example"
)

// vCanary travels only sealed; it must never rest or travel in clear.
const vCanary = "Canary-Lane-7f3a9"

// wireLog records every HTTP body the test's parties exchange with the vault.
type wireLog struct {
	mu sync.Mutex
	ex []wireExchange
}

type wireExchange struct {
	caller, method, path string
	status               int
	header               http.Header
	req, resp            []byte
}

type recordingRT struct {
	caller string
	log    *wireLog
}

func (rt recordingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	rt.log.mu.Lock()
	rt.log.ex = append(rt.log.ex, wireExchange{rt.caller, r.Method, r.URL.Path, resp.StatusCode, resp.Header.Clone(), body, rb})
	rt.log.mu.Unlock()
	return resp, nil
}

func (w *wireLog) last() wireExchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ex[len(w.ex)-1]
}

func (w *wireLog) all() []wireExchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]wireExchange(nil), w.ex...)
}

// buildMerchant builds cmd/merchant into dir, with the race detector when
// this test binary has it, so the vault process is checked too.
func buildMerchant(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the merchant binary")
	}
	bin := filepath.Join(dir, "merchant")
	args := []string{"build", "-o", bin}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	cmd := exec.Command(gobin, append(args, "../cmd/merchant")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// vaultProc is "merchant vault serve" running as its own process, each
// database in a directory of its own so an outage can take it away.
type vaultProc struct {
	t                                    *testing.T
	bin, dir                             string
	keyPath, dataKey, indexPath, pending string
	dataDir, dataPath, backupDir, backup string
	addrFile, stderrPath                 string
	cmd                                  *exec.Cmd
	exited                               chan struct{}
	url                                  string
}

func newVaultProc(t *testing.T) *vaultProc {
	t.Helper()
	dir := t.TempDir()
	v := &vaultProc{t: t, dir: dir, bin: buildMerchant(t, dir),
		keyPath: filepath.Join(dir, "vault.key"), dataKey: filepath.Join(dir, "vault-data.key"),
		indexPath: filepath.Join(dir, "index", "index.db"),
		dataDir:   filepath.Join(dir, "data"), backupDir: filepath.Join(dir, "backup"),
		addrFile: filepath.Join(dir, "addr"), stderrPath: filepath.Join(dir, "vault.stderr")}
	v.pending = v.indexPath + ".pending"
	v.dataPath, v.backup = filepath.Join(v.dataDir, "data.db"), filepath.Join(v.backupDir, "backup.db")
	for _, d := range []string{filepath.Dir(v.indexPath), v.dataDir, v.backupDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := keys.Party(t, vVault).WriteFile(v.keyPath); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := v.run("vault", "init", "-data-key", v.dataKey); code != 0 || !strings.Contains(stderr, "data key written") {
		t.Fatalf("vault init: exit %d: %s", code, stderr)
	}
	return v
}

// run runs the merchant binary to completion.
func (v *vaultProc) run(args ...string) (stdout, stderr string, code int) {
	v.t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(v.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		v.t.Fatalf("%s %v: %v", v.bin, args, err)
	}
	return out.String(), errb.String(), code
}

func (v *vaultProc) storeFlags(backup bool) []string {
	f := []string{"-index", v.indexPath, "-data", v.dataPath, "-data-key", v.dataKey}
	if backup {
		f = append(f, "-backup", v.backup)
	}
	return f
}

func (v *vaultProc) start() {
	t := v.t
	t.Helper()
	os.Remove(v.addrFile)
	stderr, err := os.OpenFile(v.stderrPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	args := append([]string{"vault", "serve", "-key", v.keyPath}, v.storeFlags(true)...)
	args = append(args, "-listen", "127.0.0.1:0", "-addr-file", v.addrFile, "-flush-every", "200ms")
	v.cmd = exec.Command(v.bin, args...)
	v.cmd.Stdout, v.cmd.Stderr = stderr, stderr
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v.exited = make(chan struct{})
	cmd, exited := v.cmd, v.exited
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(v.addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			v.url = "http://" + strings.TrimSpace(string(b))
			return
		}
		select {
		case <-exited:
			t.Fatalf("vault exited at start (%v):\n%s", cmd.ProcessState, v.stderrLog())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault did not start:\n%s", v.stderrLog())
		}
	}
}

// stop sends SIGTERM and expects a graceful exit 0.
func (v *vaultProc) stop() {
	t := v.t
	t.Helper()
	if err := v.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("vault still running 30 s after SIGTERM:\n%s", v.stderrLog())
	}
	if code := v.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("vault exited %d after SIGTERM:\n%s", code, v.stderrLog())
	}
	if log := v.stderrLog(); !strings.Contains(log, `"msg":"stopped"`) || strings.Contains(log, "DATA RACE") {
		t.Fatalf("vault log after SIGTERM:\n%s", log)
	}
}

func (v *vaultProc) stderrLog() string {
	b, _ := os.ReadFile(v.stderrPath)
	return string(b)
}

func (v *vaultProc) client(t *testing.T, k *keygen.PartyKey, wl *wireLog) *api.Client {
	t.Helper()
	c, err := api.NewClient(suite.NewKeys(k, 8), v.url, vVault,
		&http.Client{Timeout: 30 * time.Second, Transport: recordingRT{k.Identity(), wl}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// count counts rows of table in a database the vault may have open. Raw SQL
// on purpose: it counts what rests in a data or pending file during and after
// an outage, including a primary moved out of the vault's reach, and the
// data stores have no read-only opening (they open under the data key and
// would create a missing file).
func count(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sqlitex.Open(path, sqlitex.ReadOnly(), sqlitex.MaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func vProblem(t *testing.T, err error, code string) {
	t.Helper()
	var p *rfc9457.Problem
	if !errors.As(err, &p) || p.Code != code {
		t.Fatalf("want problem %q, got %v", code, err)
	}
}

// noCanaryIn fails for every file under dir holding the canary; it returns
// how many files it read.
func noCanaryIn(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if bytes.Contains(b, []byte(vCanary)) {
			t.Errorf("%s holds the canary in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func vAddress(i int) []byte {
	a := order.Address{Name: "Bob Beispiel", Line1: fmt.Sprintf("%s No. %d", vCanary, i), City: "Berlin", PostalCode: "10115", Country: "DE"}
	b, err := api.NormalizeAddress(a)
	if err != nil {
		panic(err)
	}
	return b
}

// TestVaultProcess drives "merchant vault serve" as a separate process over
// loopback: registration, grants and reveals, a data store outage with the
// pending table and its flush, rotation from the CLI, failover to the
// backup, a graceful stop, audit verification with a tampered row, and a
// scan of everything the vault wrote or sent for a canary address.
func TestVaultProcess(t *testing.T) {
	ctx := context.Background()
	v := newVaultProc(t)
	v.start()
	wl := &wireLog{}
	aliceKey := keys.Party(t, vAlice)
	alice, bob := v.client(t, aliceKey, wl), v.client(t, keys.Party(t, vBob), wl)
	shop, otherShop := v.client(t, keys.Party(t, vShop), wl), v.client(t, keys.Party(t, vOtherShop), wl)
	parcel, otherCarrier := v.client(t, keys.Party(t, vParcel), wl), v.client(t, keys.Party(t, vOtherCarrier), wl)

	// Register 20 canary addresses; the same value again is the same token.
	values := map[string][]byte{} // token → normalized value
	var tokens []string
	registerN := func(from, to int) {
		for i := from; i < to; i++ {
			res, err := alice.Register(ctx, api.TypeAddress, fmt.Sprintf("addr-%d", i), false, vAddress(i))
			if err != nil || !res.Created {
				t.Fatalf("register %d: %+v %v", i, res, err)
			}
			values[res.Token] = vAddress(i)
			tokens = append(tokens, res.Token)
		}
	}
	registerN(0, 20)
	home := tokens[0]
	if res, err := alice.Register(ctx, api.TypeAddress, "again", false, vAddress(0)); err != nil || res.Token != home || res.Created {
		t.Fatalf("dedupe: %+v %v", res, err)
	}
	if res, err := bob.Register(ctx, api.TypeAddress, "mine", false, vAddress(0)); err != nil || res.Token == home {
		t.Fatalf("another owner: %+v %v", res, err)
	}
	// Registering it again under a new label renamed it (issue 19).
	if entries, err := alice.List(ctx); err != nil || len(entries) != 20 || entries[0].Label != "again" {
		t.Fatalf("list: %d entries %v", len(entries), err)
	}

	// Grant and granted reveal.
	b := sealVaultOrder(t, aliceKey, home)
	if _, err := shop.Grant(ctx, b, "INV-1", approve(t, b)); err != nil {
		t.Fatal(err)
	}
	if got, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil || !bytes.Equal(got, values[home]) {
		t.Fatalf("granted reveal: %q %v", got, err)
	}
	if x := wl.last(); x.header.Get("Cache-Control") != "no-store" || !bytes.Contains(x.resp, []byte(`"display_only":true`)) {
		t.Fatalf("granted reveal response: %v %s", x.header, x.resp)
	}
	_, err := otherCarrier.RevealGranted(ctx, home, b.OrderID, "INV-1")
	vProblem(t, err, "no-grant")
	_, err = parcel.RevealGranted(ctx, home, b.OrderID, "INV-9")
	vProblem(t, err, "invoice-mismatch")
	_, err = shop.RevealGranted(ctx, home, b.OrderID, "INV-1")
	vProblem(t, err, "forbidden-role")
	_, err = otherShop.Grant(ctx, sealVaultOrder(t, aliceKey, home), "INV-1", "")
	vProblem(t, err, "wrong-merchant")
	_, err = shop.Grant(ctx, sealVaultOrder(t, keys.Party(t, vBob), home), "INV-1", "")
	vProblem(t, err, "not-owner")

	// A caller with a key from another key center: wrong-key.
	rogueAlice := keys.Rogue(t).Party(t, vAlice)
	_, err = v.client(t, rogueAlice, wl).List(ctx)
	if !errors.Is(err, signedhttp.ErrForgedResponse) {
		t.Fatalf("impostor: %v", err)
	}
	if x := wl.last(); x.status != http.StatusUnauthorized || !bytes.Contains(x.resp, []byte(`"code":"wrong-key"`)) {
		t.Fatalf("impostor got HTTP %d %s", x.status, x.resp)
	}

	// Outage: the primary's directory goes away (an unmounted volume) and a
	// plain file takes its place so nothing can be created there either.
	away := v.dataDir + ".away"
	if err := os.Rename(v.dataDir, away); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v.dataDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	registerN(20, 40)
	// Each new token's record and the shared record of its value.
	if n := count(t, v.pending, "pending"); n != 40 {
		t.Fatalf("%d records pending during the outage, want 40", n)
	}
	if got, err := alice.RevealOwn(ctx, tokens[25]); err != nil || !bytes.Equal(got, values[tokens[25]]) {
		t.Fatalf("owner reveal of a pending record: %q %v", got, err)
	}
	if got, err := alice.RevealOwn(ctx, tokens[5]); err != nil || !bytes.Equal(got, values[tokens[5]]) {
		t.Fatalf("owner reveal during the outage (from the backup): %q %v", got, err)
	}
	if n := count(t, filepath.Join(away, "data.db"), "records"); n != 41 {
		t.Fatalf("the moved primary holds %d records, want the 41 (alice's 20 and their values, bob's 1, which shares alice's first value) from before the outage", n)
	}

	// Restore; the flusher (every 200ms) empties the pending table.
	if err := os.Remove(v.dataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, v.dataDir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for count(t, v.pending, "pending") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pending table not flushed:\n%s", v.stderrLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p, bk := count(t, v.dataPath, "records"), count(t, v.backup, "records"); p != 81 || bk != 81 {
		t.Fatalf("after the flush the primary holds %d records, the backup %d; want 81 each", p, bk)
	}
	for i, tok := range tokens {
		if got, err := alice.RevealOwn(ctx, tok); err != nil || !bytes.Equal(got, values[tok]) {
			t.Fatalf("reveal %d after the flush: %q %v", i, got, err)
		}
	}
	if _, stderr, code := v.run(append([]string{"vault", "check"}, v.storeFlags(true)...)...); code != 0 || !strings.Contains(stderr, "agree") {
		t.Fatalf("vault check: exit %d: %s", code, stderr)
	}

	// Rotation from the CLI, against the live vault's files.
	alicePath := filepath.Join(v.dir, "alice.key")
	if err := aliceKey.WriteFile(alicePath); err != nil {
		t.Fatal(err)
	}
	addressList := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := cardholder.Main(ctx, []string{"address", "list", "-key", alicePath, "-vault-url", v.url, "-vault", vVault},
			cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
			t.Fatalf("cardholder address list: exit %d: %s", code, errb.String())
		}
		return out.String()
	}
	before := addressList()
	stdout, stderr, code := v.run(append(append([]string{"vault", "rotate"}, v.storeFlags(true)...), "-older-than", "1ns", "-grace", "1h")...)
	if code != 0 || strings.TrimSpace(stdout) != "41" {
		t.Fatalf("vault rotate: exit %d: %s %s", code, stdout, stderr)
	}
	after := addressList()
	if after == before {
		t.Fatal("address list unchanged by rotation")
	}
	entries, err := alice.List(ctx)
	if err != nil || len(entries) != 80 {
		t.Fatalf("list after rotation: %d entries, %v", len(entries), err)
	}
	var newHome string
	for _, e := range entries {
		if e.Token == home {
			newHome = e.ReplacedBy
		}
	}
	if newHome == "" || !strings.Contains(after, home) || !lineWithBoth(after, home, newHome) || strings.Contains(before, newHome) {
		t.Fatalf("rotation: %s replaced by %q\nbefore:\n%s\nafter:\n%s", home, newHome, before, after)
	}
	for _, tok := range []string{home, newHome} {
		if got, err := alice.RevealOwn(ctx, tok); err != nil || !bytes.Equal(got, values[home]) {
			t.Fatalf("reveal %s after rotation: %q %v", tok, got, err)
		}
	}
	if got, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil || !bytes.Equal(got, values[home]) {
		t.Fatalf("granted reveal of the old token in grace: %q %v", got, err)
	}
	if _, stderr, code := v.run(append([]string{"vault", "check"}, v.storeFlags(true)...)...); code != 0 {
		t.Fatalf("vault check after rotation: exit %d: %s", code, stderr)
	}

	// Failover: the primary's directory is removed; reveals read the backup.
	if n := noCanaryIn(t, v.dataDir); n == 0 {
		t.Fatal("no primary data files to scan")
	}
	if err := os.RemoveAll(v.dataDir); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{newHome, tokens[33]} {
		want := values[tok]
		if tok == newHome {
			want = values[home]
		}
		if got, err := alice.RevealOwn(ctx, tok); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("reveal from the backup: %q %v", got, err)
		}
	}
	if !strings.Contains(v.stderrLog(), "served from the backup") {
		t.Fatal("the vault did not log the failover")
	}
	v.stop()

	// Audit: the chain verifies; an edited row is named.
	stdout, stderr, code = v.run("vault", "audit", "verify", "-index", v.indexPath, "-data-key", v.dataKey, "-backup", v.backup)
	if code != 0 || !strings.HasPrefix(stdout, "audit chain verifies: ") {
		t.Fatalf("audit verify: exit %d: %s %s", code, stdout, stderr)
	}
	entriesN, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(stdout, "audit chain verifies: "), " entries, matching 1 checkpoints; every grant and reveal has its entry\n"))
	if entriesN < 100 {
		t.Fatalf("audit holds %d entries: %s", entriesN, stdout)
	}
	seq := tamperAudit(t, v.indexPath)
	stdout, stderr, code = v.run("vault", "audit", "verify", "-index", v.indexPath, "-data-key", v.dataKey, "-backup", v.backup)
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("entry %d: hash mismatch", seq)) || !strings.HasPrefix(stderr, "merchant vault: error: ") {
		t.Fatalf("audit verify after tampering with entry %d: exit %d: %s %s", seq, code, stdout, stderr)
	}

	// Nothing the vault keeps or logs, and nothing on the wire, holds the
	// canary in clear; the owner and the grantee did read it.
	if n := noCanaryIn(t, filepath.Dir(v.indexPath)) + noCanaryIn(t, v.backupDir); n < 3 {
		t.Fatalf("scanned %d files", n)
	}
	if log := v.stderrLog(); log == "" || strings.Contains(log, vCanary) {
		t.Fatalf("vault log is empty or holds the canary")
	}
	for _, x := range wl.all() {
		if bytes.Contains(x.req, []byte(vCanary)) || bytes.Contains(x.resp, []byte(vCanary)) {
			t.Errorf("%s %s %s (HTTP %d) carried the canary in clear", x.caller, x.method, x.path, x.status)
		}
	}
	if !bytes.Contains(values[home], []byte(vCanary)) {
		t.Fatal("the scan looked for a canary the values never held")
	}
}

// lineWithBoth reports whether some line of out names both tokens.
func lineWithBoth(out, a, b string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, a) && strings.Contains(line, b) {
			return true
		}
	}
	return false
}

// sealVaultOrder seals the test order shipped to token as key's owner.
func sealVaultOrder(t *testing.T, key *keygen.PartyKey, token string) *order.Bundle {
	t.Helper()
	data, err := os.ReadFile("../order/testdata/order_token.json")
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	o.ShipTo.Token = token
	b, err := order.Seal(o, suite.NewKeys(key, 4), order.Parties{Merchant: vShop, Issuer: vBank, Carrier: vParcel, Vault: vVault}, order.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamperAudit turns one refusal in the audit log into a success, as an
// insider covering tracks would, and returns its seq.
func tamperAudit(t *testing.T, indexPath string) int64 {
	t.Helper()
	idx, err := vault.OpenIndexReader(context.Background(), indexPath)
	if err != nil {
		t.Fatal(err)
	}
	refused, err := idx.AuditFind(context.Background(), "", "refused:no-grant")
	idx.Close()
	if err != nil || len(refused) == 0 {
		t.Fatalf("no refusal in the audit log: %v", err)
	}
	seq := refused[0].Seq
	// Raw SQL on purpose: an insider editing the file behind the store's back.
	// The driver is modernc.org/sqlite, registered as "sqlite" (via sqlitex).
	db, err := sql.Open("sqlite", indexPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit SET outcome = 'ok' WHERE seq = ?`, seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// approve is the issuer's approval of b for the vault, which activates the
// order's grant.
func approve(t testing.TB, b *order.Bundle) string {
	t.Helper()
	tok, err := order.VaultApproval(suite.NewKeys(keys.Party(t, vBank), 4), b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
