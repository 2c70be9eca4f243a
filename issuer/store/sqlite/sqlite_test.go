package sqlite

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderseal/internal/dsn"
	"orderseal/internal/sqlitex"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/issuer/store/storetest"
	"orderseal/order"
)

// TestConformance runs the store suite on a fresh database per subtest.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Open {
		path := filepath.Join(t.TempDir(), "issuer.db")
		return func(opt store.Options) (store.Store, error) { return Open(context.Background(), path, opt) }
	})
}

const (
	alice  = "cardholder:alice@example.org"
	bob    = "cardholder:bob@example.org"
	carol  = "consultant:carol.shop.example"
	shop   = "merchant:shop.example"
	visa   = "4111111111111111"
	master = "5555555555554444"
	sessn  = "ses_abcdefghijklmnopqrstuvwxyz"
)

var now = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

type env struct {
	dir, db string
	key     *store.CardKey
	st      *Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{dir: dir, db: filepath.Join(dir, "issuer.db")}
	var err error
	if e.key, err = store.CreateCardKey(filepath.Join(dir, "card.key")); err != nil {
		t.Fatal(err)
	}
	e.st = e.open(t, e.key)
	return e
}

func (e *env) open(t *testing.T, k *store.CardKey) *Store {
	t.Helper()
	st, err := Open(context.Background(), e.db, store.Options{CardKey: k, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (e *env) add(t *testing.T, number, holder string) store.Card {
	t.Helper()
	c, err := e.st.AddCard(context.Background(), store.NewCard{Number: number, Cardholder: holder, Expiry: "2031-12", Currency: "EUR", Limit: 100_00})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func request(orderID string, h byte, amount int64) store.AuthRequest {
	return store.AuthRequest{Merchant: shop, OrderID: orderID, HeaderHash: [32]byte{h}, Cardholder: alice,
		Number: visa, Expiry: "2031-12", Total: &order.Money{Amount: amount, Currency: "EUR"}, Amount: amount, Currency: "EUR"}
}

// TestEncryptedAtRest: after enrolling and authorizing, no file of the
// issuer (database, WAL, shared memory) holds the card number in any
// spelling; a reopened store still finds the card by its number.
func TestEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.add(t, visa, alice)
	if _, _, err := e.st.Authorize(ctx, request("ord-1", 1, 10_00)); err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{[]byte(visa), []byte("4111 1111 1111 1111"), []byte("411111111111")}
	scan := func() {
		files := 0
		filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, ".key") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, n := range needles {
				if bytes.Contains(data, n) {
					t.Errorf("%s holds the card number in clear", filepath.Base(p))
				}
			}
			return nil
		})
		if files == 0 {
			t.Fatal("no database file scanned")
		}
	}
	scan() // with the WAL still open
	e.st.Close()
	st := e.open(t, e.key)
	e.st = st
	scan() // after the checkpoint at close
	a, _, err := st.Authorize(ctx, request("ord-2", 2, 10_00))
	if err != nil || a.Decision != api.Approved || a.CardID != c.ID {
		t.Fatalf("after reopen: %+v %v", a, err)
	}
	// A sealed number moved onto another card row does not open (AAD = card id).
	c2 := e.add(t, master, bob)
	if _, err := st.db.Exec(`UPDATE cards SET number_nonce = (SELECT number_nonce FROM cards WHERE card_id = ?),
		number_ct = (SELECT number_ct FROM cards WHERE card_id = ?) WHERE card_id = ?`, c2.ID, c2.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Authorize(ctx, request("ord-3", 3, 10_00)); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("swapped ciphertext: %v", err)
	}
	// A lookup hash pasted onto another card is caught by the sealed number.
	if _, err := st.db.Exec(`UPDATE cards SET lookup = X'00' WHERE card_id = ?`, c.ID); err != nil {
		t.Fatal(err)
	}
	keys, err := store.DeriveSubKeys(e.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.Exec(`UPDATE cards SET lookup = ? WHERE card_id = ?`, keys.Lookup(visa), c2.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Authorize(ctx, request("ord-4", 4, 10_00)); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("pasted lookup hash: %v", err)
	}
}

// TestMigrationFromV1: a database written before assisted orders opens,
// its records read as online with no sealer or session, and the new
// columns keep a session exactly on assisted records. No column anywhere
// is named for a CVC.
func TestMigrationFromV1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "issuer.db")
	db, err := sqlitex.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitex.Migrate(ctx, db, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO authorizations (merchant, order_id, header_hash, card_id, amount, currency, decision, reason, auth_code, decided)
		VALUES (?, 'ord-old', ?, NULL, 100, 'EUR', 'declined', 'card-not-enrolled', '', ?)`, shop, bytes.Repeat([]byte{1}, 32), now.UnixNano()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Read-only, a database of an older schema is refused, not misread.
	if _, err := OpenReadOnly(ctx, path, store.Options{}); err == nil || !strings.Contains(err.Error(), "schema version 1") {
		t.Fatalf("read-only open of a v1 database: %v", err)
	}
	k, err := store.CreateCardKey(filepath.Join(dir, "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, path, store.Options{CardKey: k, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, err := sqlitex.Version(ctx, st.db); err != nil || v != len(migrations) {
		t.Fatalf("version %d %v", v, err)
	}
	old, err := st.Authorization(ctx, shop, "ord-old")
	if err != nil || old.Channel != api.ChannelOnline || old.Session != "" || old.Sealer != "" || old.Reason != api.ReasonNotEnrolled {
		t.Fatalf("old record: %+v %v", old, err)
	}
	for name, row := range map[string][]any{
		"":                           {api.ChannelAssisted, sessn}, // the statement itself is sound
		"assisted without a session": {api.ChannelAssisted, ""},
		"online with a session":      {api.ChannelOnline, sessn},
		"unknown channel":            {"fax", ""},
	} {
		if _, err := st.db.Exec(`INSERT INTO authorizations (merchant, order_id, header_hash, sealer, channel, session, amount, currency, decision, reason, auth_code, decided)
			VALUES (?, ?, ?, ?, ?, ?, 100, 'EUR', 'declined', 'x', '', 1)`, shop, "ord-"+name, bytes.Repeat([]byte{2}, 32), carol, row[0], row[1]); (err == nil) != (name == "") {
			t.Errorf("%q: %v", name, err)
		}
	}
	rows, err := st.db.Query(`SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p WHERE m.type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	columns := 0
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			t.Fatal(err)
		}
		columns++
		if strings.Contains(strings.ToLower(column), "cvc") || strings.Contains(strings.ToLower(column), "cvv") {
			t.Errorf("%s.%s: a column for a security code", table, column)
		}
	}
	if columns < 20 {
		t.Fatalf("only %d columns seen", columns)
	}
}

// TestOpen: the DSN forms Open takes and refuses, and a missing database
// under MustExist or ReadOnly is store.ErrNoDatabase and is not created.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, s := range []string{filepath.Join(dir, "bare.db"), "sqlite:" + filepath.Join(dir, "prefixed.db")} {
		st, err := Open(ctx, s, store.Options{})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		st.Close()
	}
	for _, s := range []string{"postgres://issuer@localhost/issuer", "", ":memory:", "file:x.db", "mysql://x"} {
		if _, err := Open(ctx, s, store.Options{}); !errors.Is(err, dsn.ErrDSN) {
			t.Errorf("Open(%q): %v", s, err)
		}
	}
	missing := filepath.Join(dir, "missing.db")
	for name, opt := range map[string]store.Options{"must exist": {MustExist: true}, "read-only": {ReadOnly: true}} {
		_, err := Open(ctx, missing, opt)
		if !errors.Is(err, store.ErrNoDatabase) || err.Error() != missing+": no such database" {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s created the database", name)
		}
	}
}

// TestReadOnly: a read-only store reads what the daemon wrote while it
// runs, checks the card key without recording one, and writes nothing.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.add(t, visa, alice)
	a, _, err := e.st.Authorize(ctx, request("ord-1", 1, 10_00))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(ctx, e.db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if cards, err := ro.Cards(ctx); err != nil || len(cards) != 1 || cards[0].ID != c.ID || cards[0].Available != 90_00 {
		t.Fatalf("cards %+v %v", cards, err)
	}
	if got, err := ro.Authorizations(ctx, store.AuthFilter{Merchant: shop}); err != nil || len(got) != 1 || got[0] != a {
		t.Fatalf("authorizations %+v %v", got, err)
	}
	if _, err := ro.SetStatus(ctx, c.ID, store.StatusSuspended); err == nil {
		t.Fatal("a read-only store wrote")
	}
	if _, err := ro.Void(ctx, shop, "ord-1"); err == nil {
		t.Fatal("a read-only store voided")
	}
	if got, _ := e.st.Card(ctx, c.ID); got.Status != store.StatusActive || got.Available != 90_00 {
		t.Fatalf("card changed: %+v", got)
	}
	other, _ := store.CreateCardKey(filepath.Join(e.dir, "other.key"))
	if _, err := OpenReadOnly(ctx, e.db, store.Options{CardKey: other}); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("read-only, wrong key: %v", err)
	}
	ro2, err := OpenReadOnly(ctx, e.db, store.Options{CardKey: e.key})
	if err != nil {
		t.Fatal(err)
	}
	ro2.Close()
}
