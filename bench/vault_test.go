package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"orderseal/internal/sqlitex"
	"orderseal/keygen"
	"orderseal/vault"
	"orderseal/vault/api"
	"orderseal/vault/store"
)

// vaultStack is a vault served on loopback and a cardholder's client for it.
type vaultStack struct {
	client *api.Client
	raw    *sql.DB
	value  []byte
}

func newVaultStack(b *testing.B) *vaultStack {
	b.Helper()
	dir := b.TempDir()
	m, err := keygen.MasterFromSeed(keygen.Params{System: [16]byte{9}, K: keygen.DefaultK}, [32]byte{9})
	if err != nil {
		b.Fatal(err)
	}
	vk, err := m.Issue("vault:vault.shop.example")
	if err != nil {
		b.Fatal(err)
	}
	ak, err := m.Issue("cardholder:alice@example.org")
	if err != nil {
		b.Fatal(err)
	}
	dk, err := store.CreateDataKey(filepath.Join(dir, "dk"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{IndexPath: filepath.Join(dir, "index.db"), DataPath: filepath.Join(dir, "data.db"), DataKey: dk})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ts := httptest.NewServer(vault.NewServer(keygen.NewCache(vk, 64), st, vault.Options{}).Handler())
	b.Cleanup(ts.Close)
	c, err := api.NewClient(keygen.NewCache(ak, 8), ts.URL, "vault:vault.shop.example", ts.Client())
	if err != nil {
		b.Fatal(err)
	}
	raw, err := sqlitex.Open(filepath.Join(dir, "raw.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(`CREATE TABLE rec (token TEXT PRIMARY KEY, hash BLOB, nonce BLOB, ct BLOB)`); err != nil {
		b.Fatal(err)
	}
	o, _, _, _ := loadSealFixture(b, 8)
	value, err := api.NormalizeAddress(*o.ShipTo.Address)
	if err != nil {
		b.Fatal(err)
	}
	return &vaultStack{client: c, raw: raw, value: value}
}

// rawInsert inserts rows shaped like the vault's data records (hash, nonce,
// sealed value of valueLen bytes) under the same pragmas.
func (v *vaultStack) rawInsert(b *testing.B, valueLen int) func() {
	i := 0
	return func() {
		i++
		row := make([]byte, 32+24+valueLen+16)
		rand.Read(row)
		if _, err := v.raw.Exec(`INSERT INTO rec VALUES (?,?,?,?)`, fmt.Sprintf("tok_%d", i), row[:32], row[32:56], row[56:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVaultRegister: a register through the signed HTTP API (a distinct
// national id each time, so every call writes) beside a raw SQLite insert of the same size
// under the same pragmas (WAL, synchronous=FULL).
func BenchmarkVaultRegister(b *testing.B) {
	v := newVaultStack(b)
	ctx := context.Background()
	i := 0
	paired(b, func() {
		i++
		if _, err := v.client.Register(ctx, api.TypeNationalID, "bench", false, []byte(fmt.Sprintf("ID%08d", i))); err != nil {
			b.Fatal(err)
		}
	}, v.rawInsert(b, len("ID00000000")), "sqlite-insert")
}

// BenchmarkVaultReveal: an owner reveal through the API beside a raw select.
func BenchmarkVaultReveal(b *testing.B) {
	v := newVaultStack(b)
	ctx := context.Background()
	res, err := v.client.Register(ctx, api.TypeAddress, "home", false, v.value)
	if err != nil {
		b.Fatal(err)
	}
	ins := v.rawInsert(b, len(v.value))
	ins()
	paired(b, func() {
		if _, err := v.client.RevealOwn(ctx, res.Token); err != nil {
			b.Fatal(err)
		}
	}, func() {
		var ct []byte
		if err := v.raw.QueryRow(`SELECT ct FROM rec WHERE token = ?`, "tok_1").Scan(&ct); err != nil {
			b.Fatal(err)
		}
	}, "sqlite-select")
}
