package vault_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"orderseal/internal/cli"
	"orderseal/tstest/pgtest"
	"orderseal/vault"
	"orderseal/vault/store"
)

// TestOpenStorePostgres: postgres:// DSNs open the PostgreSQL backend, the
// index and data each in its own database under its own role; what one
// vault process wrote, the next reads, and its audit log verifies against
// whatever checkpoint the data store holds. Without a pending file the vault
// refuses to start, with a hint.
func TestOpenStorePostgres(t *testing.T) {
	ctx := context.Background()
	index, data := pgtest.New(t), pgtest.New(t)
	dir := t.TempDir()
	dk, err := store.CreateDataKey(filepath.Join(dir, "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := vault.StoreConfig{Index: index.URL(), Data: data.URL(), DataKey: dk}
	var ce *cli.Error
	if _, err := vault.OpenStore(ctx, cfg); !errors.Is(err, store.ErrInvalid) || !errors.As(err, &ce) || ce.Hint == "" {
		t.Fatalf("no pending file: %v, want ErrInvalid with a hint", err)
	}
	cfg.Pending = "sqlite:" + filepath.Join(dir, "pending.db")
	st, err := vault.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, created, err := st.Register(ctx, "cardholder:alice@example.org", store.TypeEmail, "home", []byte("alice@example.org"), false, time.Hour)
	if err != nil || !created {
		t.Fatalf("register: %q %v %v", tok, created, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = vault.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, created, err := st.Register(ctx, "cardholder:alice@example.org", store.TypeEmail, "home", []byte("alice@example.org"), false, time.Hour)
	if err != nil || created || again != tok {
		t.Fatalf("after reopening: %q %v %v, want the same token %q", again, created, err, tok)
	}
	st.Close()
	// The read-only index finds the token; the audit verifies on PostgreSQL.
	idx, err := vault.OpenIndexReader(ctx, index.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if e, err := idx.Entry(ctx, tok); err != nil || e.Owner != "cardholder:alice@example.org" {
		t.Fatalf("read-only index: %+v %v", e, err)
	}
	n, err := store.VerifyAudit(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := vault.VerifyAuditAnchored(ctx, index.URL(), dk, vault.AuditAnchors{Data: data.URL()})
	if err != nil || rep.Entries != n {
		t.Fatalf("audit verify: %+v %v, want %d entries", rep, err, n)
	}
}
