package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderseal/carrier"
	carrierstore "orderseal/carrier/store"
	"orderseal/internal/cli"
	"orderseal/internal/sqlitex"
	"orderseal/internal/web"
	"orderseal/issuer"
	issuerstore "orderseal/issuer/store"
	"orderseal/merchant"
	"orderseal/tstest/keys"
	"orderseal/vault"
	vaultstore "orderseal/vault/store"
)

// SQLite b-tree page types (the first byte of a page's header).
const (
	pageIndexInterior = 0x02
	pageIndexLeaf     = 0x0a
	pageTableLeaf     = 0x0d
)

// findPage returns the byte offset of the page-type byte of the first page
// past page 1 of type typ in the database image db.
func findPage(t *testing.T, db []byte, typ byte) int {
	t.Helper()
	size := int(binary.BigEndian.Uint16(db[16:18]))
	if size == 1 {
		size = 65536
	}
	for off := size; off+size <= len(db); off += size {
		if db[off] == typ {
			return off
		}
	}
	t.Fatalf("no page of type %#x in %d pages", typ, len(db)/size)
	return 0
}

// fill adds rows to a daemon's own tables with raw SQL, so its indexes grow
// interior pages, then vacuums the file: no free page is left to flip by
// mistake, and the image is whole without its WAL.
func fill(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sqlitex.Open(path, sqlitex.MustExist())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append(stmts, `VACUUM`, `PRAGMA wal_checkpoint(TRUNCATE)`) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := sqlitex.QuickCheck(context.Background(), db); err != nil {
		t.Fatalf("the filled store does not check: %v", err)
	}
}

// rows is a recursive CTE of n rows numbered x = 1..n, for INSERT … SELECT.
const rows = `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 4000) `

// TestDamagedStoreRefusesStart is issue 22 item 4: each daemon quick-checks
// its database files before it opens them. One byte flipped in the database
// header, or in the page header of an index interior, index leaf or table
// leaf page, of the merchant's, the issuer's, the carrier's or the vault's
// index or data store: 'serve' exits 1 with one error line naming the file
// and a hint saying how to restore it.
func TestDamagedStoreRefusesStart(t *testing.T) {
	// A daemon that started on a damaged file would serve until this ends;
	// every check of a healthy daemon returns long before (the budget is
	// for a loaded machine: 30 s ran out at a load average of 27).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	keyFiles := map[string]string{}
	for _, id := range []string{cShop, cBank, cParcel, cVault} {
		keyFiles[id] = keys.WriteKeyFile(t, filepath.Join(dir, "keys"), id)
	}
	key := func(id string) string { return keyFiles[id] }
	cardKey := filepath.Join(dir, "card.key")
	ck, err := issuerstore.CreateCardKey(cardKey)
	if err != nil {
		t.Fatal(err)
	}
	dataKey := filepath.Join(dir, "data.key")
	dk, err := vaultstore.CreateDataKey(dataKey)
	if err != nil {
		t.Fatal(err)
	}
	peer := "=http://127.0.0.1:9"
	outboxRows := rows + `INSERT INTO outbox (kind, key, payload, next_at, created) SELECT 'book', 'ord_' || printf('%026d', x), NULL, x, x FROM n`
	vaultIndex := filepath.Join(dir, "vault-index.db")

	stores := []struct {
		name string
		make func(t *testing.T, path string)
		// serve runs the daemon's serve command on the database at path.
		serve func(path string) int
	}{
		{"merchant", func(t *testing.T, path string) {
			st, err := merchant.OpenStore(ctx, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			fill(t, path, outboxRows)
		}, func(path string) int {
			return merchant.Main(ctx, []string{"serve", "-key", key(cShop), "-db", path, "-issuer", cBank + peer,
				"-carrier", cParcel + peer, "-vault", cVault + peer, "-listen", "127.0.0.1:0"}, stdio)
		}},
		{"issuer", func(t *testing.T, path string) {
			st, err := issuer.OpenStore(ctx, path, issuerstore.Options{CardKey: ck})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			fill(t, path, rows+`INSERT INTO authorizations (merchant, order_id, header_hash, amount, currency, decision, reason, auth_code, decided)
				SELECT 'merchant:shop.example', 'ord_' || printf('%026d', x), randomblob(32), 100, 'EUR', 'declined', 'unknown-card', '', x FROM n`)
		}, func(path string) int {
			return issuer.Main(ctx, []string{"serve", "-key", key(cBank), "-db", path, "-card-key", cardKey, "-listen", "127.0.0.1:0"}, stdio)
		}},
		{"carrier", func(t *testing.T, path string) {
			st, err := carrier.OpenStore(ctx, path, carrierstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			fill(t, path, outboxRows)
		}, func(path string) int {
			return carrier.Main(ctx, []string{"serve", "-key", key(cParcel), "-db", path, "-vault-url", "http://127.0.0.1:9", "-vault", cVault,
				"-merchant", cShop + peer, "-listen", "127.0.0.1:0"}, stdio)
		}},
		{"vault index", func(t *testing.T, path string) {
			st, err := vault.OpenStore(ctx, vault.StoreConfig{Index: path, Data: filepath.Join(dir, "vault-index-data.db"), DataKey: dk})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			fill(t, path, rows+`INSERT INTO entries (token, owner, type, label, epoch, created, expires, shareable)
				SELECT 'tok_' || printf('%026d', x) || '_adr', 'cardholder:o' || (x % 97) || '@example.org', 'adr', 'label ' || x, 1, x, 0, 0 FROM n`)
		}, func(path string) int {
			return vaultServe(ctx, key(cVault), path, filepath.Join(dir, "vault-index-data.db"), dataKey)
		}},
		{"vault data", func(t *testing.T, path string) {
			st, err := vault.OpenStore(ctx, vault.StoreConfig{Index: vaultIndex, Data: path, DataKey: dk})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			fill(t, path, rows+`INSERT INTO records (token, dedupe, nonce, ct, created)
				SELECT 'tok_' || printf('%026d', x) || '_adr', randomblob(32), randomblob(24), randomblob(80), x FROM n`)
		}, func(path string) int {
			return vaultServe(ctx, key(cVault), vaultIndex, path, dataKey)
		}},
	}
	flips := []struct {
		name   string
		offset func(t *testing.T, db []byte) int
	}{
		{"database header", func(t *testing.T, db []byte) int { return 0 }}, // "SQLite format 3": no database any more
		{"index interior page", func(t *testing.T, db []byte) int { return findPage(t, db, pageIndexInterior) }},
		{"index leaf page", func(t *testing.T, db []byte) int { return findPage(t, db, pageIndexLeaf) }},
		{"table leaf page", func(t *testing.T, db []byte) int { return findPage(t, db, pageTableLeaf) }},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			pristine := filepath.Join(t.TempDir(), "store.db")
			s.make(t, pristine)
			img, err := os.ReadFile(pristine)
			if err != nil {
				t.Fatal(err)
			}
			if err := web.CheckStores(ctx, pristine); err != nil {
				t.Fatalf("the pristine store: %v", err)
			}
			for _, f := range flips {
				t.Run(f.name, func(t *testing.T) {
					damaged := filepath.Join(t.TempDir(), "damaged.db")
					b := bytes.Clone(img)
					b[f.offset(t, b)] ^= 0x01
					if err := os.WriteFile(damaged, b, 0o600); err != nil {
						t.Fatal(err)
					}
					errb.Reset()
					code := s.serve(damaged)
					lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
					if code != cli.ExitFailure || len(lines) != 2 ||
						!strings.Contains(lines[0], "error: database "+damaged+" is damaged, not starting") ||
						!strings.Contains(lines[1], "hint: stop the daemon, copy your last backup of "+damaged+" over it") {
						t.Fatalf("exit %d, want 1 with the file named and how to restore it:\n%s", code, errb.String())
					}
					var de *web.DamagedError
					if err := web.CheckStores(ctx, damaged); !errors.As(err, &de) || de.Path != damaged {
						t.Fatalf("CheckStores: %v", err)
					}
				})
			}
		})
	}
}

var (
	errb  bytes.Buffer
	stdio = cli.Stdio{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb}
)

// vaultServe runs 'merchant vault serve' on the index and data store given.
func vaultServe(ctx context.Context, key, index, data, dataKey string) int {
	err := vault.Command(ctx, "merchant", []string{"serve", "-key", key, "-index", index, "-data", data, "-data-key", dataKey,
		"-listen", "127.0.0.1:0"}, stdio)
	var ce *cli.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return cli.Report("merchant vault", stdio.Err, err)
}
