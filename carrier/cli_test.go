package carrier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderseal/carrier"
	"orderseal/internal/cli"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// TestShipmentsCommand: the listing shows tracking, merchant, order,
// status and booking time, as a table or JSON, and never an address.
func TestShipmentsCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	sh, err := e.merchant(t, keys.Shop).Book(ctx, sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{}), "INV-1")
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "shipments", "-db", e.dbPath)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "TRACKING") ||
		!strings.Contains(lines[1], sh.Tracking) || !strings.Contains(lines[1], keys.Shop) || !strings.Contains(lines[1], sh.OrderID) ||
		!strings.Contains(lines[1], "booked") || !strings.Contains(lines[1], sh.Booked) {
		t.Fatalf("shipments: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "shipments", "-db", e.dbPath, "-json")
	var rows []map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 {
		t.Fatalf("shipments -json: exit %d\n%s", code, out)
	}
	want := map[string]string{"tracking": sh.Tracking, "merchant": keys.Shop, "order_id": sh.OrderID, "status": "booked", "booked": sh.Booked}
	for k, v := range want {
		if rows[0][k] != v {
			t.Fatalf("shipments -json: %s = %q, want %q", k, rows[0][k], v)
		}
	}
	if len(rows[0]) != len(want) {
		t.Fatalf("shipments -json has fields %v", rows[0])
	}
	for _, s := range []string{canaryStreet, canaryCity, canaryPostal} {
		if strings.Contains(out, s) {
			t.Fatalf("the listing shows %q", s)
		}
	}
}

// TestCommandErrors: mistakes get exit code 2, failures 1, each as one
// "carrier: error:" line, with a hint where one helps.
func TestCommandErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "usage: carrier"},
		{"unknown command", []string{"ship"}, 2, `unknown command "ship"`},
		{"help", []string{"-h"}, 0, "label"},
		{"serve without flags", []string{"serve"}, 2, "-key is required"},
		{"event without tracking", []string{"event", "-status", "picked-up", "-db", missing}, 2, "tracking number is required"},
		{"event with a bad tracking number", []string{"event", "OS123456784DE", "-status", "picked-up", "-db", missing}, 2, "check digit"},
		{"event without status", []string{"event", "OS123456785DE", "-db", missing}, 2, "-status is required"},
		{"event on a missing database", []string{"event", "OS123456785DE", "-status", "picked-up", "-db", missing}, 1, "hint:"},
		{"two tracking numbers", []string{"event", "OS123456785DE", "-db", missing, "OS123456785DE"}, 2, "unexpected argument"},
		{"shipments on a missing database", []string{"shipments", "-db", missing}, 1, "hint:"},
		{"label without -o", []string{"label", "OS123456785DE", "-db", missing}, 2, "-o is required"},
		{"label with a bad vault id", []string{"label", "OS123456785DE", "-o", filepath.Join(dir, "l.png"), "-db", missing,
			"-key", keys.WriteKeyFile(t, t.TempDir(), keys.Parcel), "-vault-url", "http://127.0.0.1:1", "-vault", "merchant:x"}, 2, "vault identity"},
		{"label with another party's key", []string{"label", "OS123456785DE", "-o", filepath.Join(dir, "l.png"), "-db", missing,
			"-key", keys.WriteKeyFile(t, t.TempDir(), keys.Shop), "-vault-url", "http://127.0.0.1:1", "-vault", keys.Vault}, 1, "not of a carrier"},
		{"serve with another party's key", []string{"serve", "-key", keys.WriteKeyFile(t, t.TempDir(), keys.Shop), "-db", missing,
			"-vault-url", "http://127.0.0.1:1", "-vault", keys.Vault, "-merchant", keys.Shop + "=http://127.0.0.1:1"}, 1, "not of a carrier"},
		{"serve without a merchant", []string{"serve", "-key", keys.WriteKeyFile(t, t.TempDir(), keys.Parcel), "-db", missing,
			"-vault-url", "http://127.0.0.1:1", "-vault", keys.Vault}, 2, "-merchant is required"},
		{"serve with a merchant that is not one", []string{"serve", "-key", keys.WriteKeyFile(t, t.TempDir(), keys.Parcel), "-db", missing,
			"-vault-url", "http://127.0.0.1:1", "-vault", keys.Vault, "-merchant", keys.Bank + "=http://127.0.0.1:1"}, 2, "merchant identity"},
		{"serve with a merchant URL carrying credentials", []string{"serve", "-key", keys.WriteKeyFile(t, t.TempDir(), keys.Parcel), "-db", missing,
			"-vault-url", "http://127.0.0.1:1", "-vault", keys.Vault, "-merchant", keys.Shop + "=http://u:p@127.0.0.1:1"}, 2, "no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.code, stderr, tt.want)
			}
			if code != 0 && out != "" {
				t.Fatalf("a failure wrote to stdout: %q", out)
			}
			if code != 0 && tt.args != nil && tt.args[0] != "ship" && !strings.Contains(stderr, "carrier: error: ") {
				t.Fatalf("no one-line error: %q", stderr)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("a command created the missing database")
	}
}

// TestServe runs 'carrier serve' on a port of its choosing, books through
// it, and stops it as SIGTERM would: exit 0.
func TestServe(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // for its vault
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- carrier.Main(ctx, []string{"serve", "-key", e.carrierKey, "-db", filepath.Join(dir, "c.db"), "-listen", "127.0.0.1:0",
			"-addr-file", addrFile, "-vault-url", e.vaultTS.URL, "-vault", keys.Vault, "-country", "at", "-merchant", keys.Shop + "=" + eventsBase},
			cli.Stdio{In: bytes.NewReader(nil), Out: &bytes.Buffer{}, Err: &stderr})
	}()
	var addr string
	waitFor(t, "the address file", func() bool {
		b, err := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	e.ts.URL = "http://" + addr // book through the spawned daemon
	sh, err := e.merchant(t, keys.Shop).Book(context.Background(), sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{}), "INV-1")
	if err != nil || !strings.HasSuffix(sh.Tracking, "AT") {
		t.Fatalf("booking through serve: %+v %v", sh, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, stderr.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	logs := stderr.Bytes()
	if !bytes.Contains(logs, []byte(`"msg":"shipment booked"`)) || !bytes.Contains(logs, []byte(`"daemon":"carrier"`)) {
		t.Fatalf("logs: %s", logs)
	}
	for _, s := range []string{canaryStreet, canaryCity, canaryPostal} {
		if bytes.Contains(logs, []byte(s)) {
			t.Fatalf("serve logged %q", s)
		}
	}
}
