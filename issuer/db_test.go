package issuer_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/internal/dsn"
	"orderseal/issuer"
	"orderseal/issuer/store"
	"orderseal/tstest/keys"
	"orderseal/tstest/pgtest"
)

// TestOpenStore: a bare path and sqlite:PATH open the SQLite backend (the
// same database); a scheme with no issuer backend, or a DSN that does not
// parse, is refused by name, with its password hidden; postgres://… opens
// the PostgreSQL backend.
func TestOpenStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "issuer.db")
	key, err := store.CreateCardKey(filepath.Join(t.TempDir(), "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.CreateCardKey(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := issuer.OpenStore(ctx, path, store.Options{CardKey: key})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.AddCard(ctx, store.NewCard{Number: visa, Cardholder: keys.Alice, Expiry: "2031-12", Currency: "EUR", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = issuer.OpenStore(ctx, "sqlite:"+path, store.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.Card(ctx, c.ID); err != nil || got != c {
		t.Fatalf("card %+v %v, want %+v", got, err, c)
	}
	for _, s := range []string{"mysql://issuer:s3cret@db.example/issuer", "postgres://issuer:s3cret@db.example:port/issuer", ""} {
		st, err := issuer.OpenStore(ctx, s, store.Options{})
		if st != nil || !errors.Is(err, dsn.ErrDSN) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("OpenStore(%q) = %v, %v", s, st, err)
		}
	}
	// postgres://… opens the PostgreSQL backend.
	pg := pgtest.New(t)
	st, err = issuer.OpenStore(ctx, pg.URL(), store.Options{CardKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if c, err := st.AddCard(ctx, store.NewCard{Number: visa, Cardholder: keys.Alice, Expiry: "2031-12", Currency: "EUR", Limit: 100}); err != nil || c.Available != 100 {
		t.Fatalf("postgres: %+v %v", c, err)
	}
	if _, err := issuer.OpenStore(ctx, pg.URL(), store.Options{CardKey: other}); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("postgres under another card key: %v", err)
	}
}
