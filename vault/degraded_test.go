package vault_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderseal/internal/cli"
	"orderseal/tstest/keys"
	"orderseal/vault"
	"orderseal/vault/store"
)

// TestServeRefusesMissingStore is issue 22 item 5: 'vault serve' whose
// data or backup store cannot be created (its folder does not exist) does
// not start: one error line naming the store, a hint, exit 1. With
// -allow-degraded it starts and serves through the pending table.
func TestServeRefusesMissingStore(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "vault.key")
	if err := keys.Party(t, keys.Vault).WriteFile(keyPath); err != nil {
		t.Fatal(err)
	}
	dataKey := filepath.Join(dir, "data.key")
	if _, err := store.CreateDataKey(dataKey); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	serve := func(ctx context.Context, data, backup string, extra ...string) (int, string) {
		// The store and the server log from their own goroutines onto one
		// stderr: the buffer standing in for it must take concurrent writes.
		var errb syncBuffer
		args := append([]string{"serve", "-key", keyPath, "-index", filepath.Join(dir, "index.db"), "-data", data, "-backup", backup,
			"-data-key", dataKey, "-listen", "127.0.0.1:0", "-addr-file", filepath.Join(dir, "addr")}, extra...)
		err := vault.Command(ctx, "merchant", args, cli.Stdio{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb})
		var ce *cli.Error
		if err == nil {
			return 0, string(errb.Bytes())
		}
		if errors.As(err, &ce) {
			return ce.Code, string(errb.Bytes())
		}
		return 1, string(errb.Bytes()) + err.Error()
	}
	for _, tc := range []struct{ name, data, backup, store string }{
		{"backup folder missing", filepath.Join(dir, "data", "data.db"), filepath.Join(dir, "no-backup", "backup.db"), "backup"},
		{"data folder missing", filepath.Join(dir, "no-data", "data.db"), filepath.Join(dir, "data", "backup.db"), "primary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code, errs := serve(ctx, tc.data, tc.backup)
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.Contains(errs, "merchant vault: error: vault "+tc.store+" data store") ||
				!strings.Contains(errs, "cannot be created or opened") || !strings.Contains(last, "hint: ") || !strings.Contains(last, "-allow-degraded") {
				t.Fatalf("exit %d:\n%s", code, errs)
			}
			if _, err := os.Stat(filepath.Join(dir, "addr")); err == nil {
				t.Fatal("the vault listened")
			}
		})
	}
	t.Run("-allow-degraded starts", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		go func() {
			code, _ := serve(ctx, filepath.Join(dir, "data", "data.db"), filepath.Join(dir, "no-backup", "backup.db"), "-allow-degraded")
			done <- code
		}()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "addr")); err == nil && len(b) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the vault did not start with -allow-degraded")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exit %d after stopping", code)
		}
	})
}
