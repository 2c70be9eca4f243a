package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderseal/internal/sqlitex"
	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/vault"
	"orderseal/vault/api"
	"orderseal/vault/store"
)

// vaultStack is a vault served on loopback, a cardholder's client for it,
// and the clients of as many cardholders as BenchmarkVaultRegister runs
// callers: a vault limits each caller identity's requests in progress and
// live nonces (DESIGN.md §5), so 32 callers at once are 32 cardholders.
type vaultStack struct {
	client  *api.Client
	holders []*api.Client
	raw     *sql.DB
	rawPath string
	value   []byte
}

func newVaultStack(b *testing.B) *vaultStack {
	b.Helper()
	dir := b.TempDir()
	kc := keys.Center(b, [32]byte{9}, [16]byte{9}, keygen.DefaultK)
	vk, ak := kc.Party(b, keys.Vault), kc.Party(b, keys.Alice)
	dk, err := store.CreateDataKey(filepath.Join(dir, "dk"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	st, err := vault.OpenStore(ctx, vault.StoreConfig{Index: filepath.Join(dir, "index.db"), Data: filepath.Join(dir, "data.db"), DataKey: dk})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ts := httptest.NewServer(vault.NewServer(suite.NewKeys(vk, 64), st, vault.Options{}).Handler())
	b.Cleanup(ts.Close)
	// Keep a connection per concurrent caller, as a busy client would,
	// instead of net/http's default of two idle ones.
	hc := ts.Client()
	tr := hc.Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = callers
	hc.Transport = tr
	c, err := api.NewClient(suite.NewKeys(ak, 8), ts.URL, keys.Vault, hc)
	if err != nil {
		b.Fatal(err)
	}
	// The raw baseline at its best: one connection, so concurrent writers
	// queue in Go rather than in SQLite's sleeping busy handler (which makes
	// 32 independent writers slower than one).
	rawPath := filepath.Join(dir, "raw.db")
	raw, err := sqlitex.Open(rawPath, sqlitex.Serialized())
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
	v := &vaultStack{client: c, raw: raw, rawPath: rawPath, value: value}
	for i := range callers {
		hk := kc.Party(b, fmt.Sprintf("cardholder:bench-%02d@example.org", i))
		h, err := api.NewClient(suite.NewKeys(hk, 8), ts.URL, keys.Vault, hc)
		if err != nil {
			b.Fatal(err)
		}
		v.holders = append(v.holders, h)
	}
	return v
}

// rawInsert inserts the i-th row shaped like the vault's data records
// (hash, nonce, sealed value of valueLen bytes), one transaction each, under
// the same pragmas. Safe for concurrent use with distinct i.
func (v *vaultStack) rawInsert(b *testing.B, valueLen int) func(i int) {
	return func(i int) {
		row := make([]byte, 32+24+valueLen+16)
		rand.Read(row)
		if _, err := v.raw.Exec(`INSERT INTO rec VALUES (?,?,?,?)`, fmt.Sprintf("tok_%d", i), row[:32], row[32:56], row[56:]); err != nil {
			b.Error(err)
		}
	}
}

// callers is how many concurrent clients BenchmarkVaultRegister runs.
const callers = 32

// parallelPaired is paired for throughput: blocks of operations spread over
// callers goroutines, each block of op followed by as many of base under the
// same concurrency. Each function gets a distinct operation number. ns/op is
// op's wall time over its operations; it reports base's the same way as
// baseName-ns/op, and the ratio of the two.
func parallelPaired(b *testing.B, callers int, op, base func(i int), baseName string) {
	block := 16 * callers
	run := func(f func(int), from, n int) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		t0 := time.Now()
		for range callers {
			wg.Go(func() {
				for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
					f(from + i)
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	var tOp, tBase time.Duration
	b.ResetTimer()
	for done := 0; done < b.N && !b.Failed(); done += block {
		n := min(block, b.N-done)
		tOp += run(op, done, n)
		b.StopTimer()
		tBase += run(base, done, n)
		b.StartTimer()
	}
	b.ReportMetric(float64(tBase.Nanoseconds())/float64(b.N), baseName+"-ns/op")
	b.ReportMetric(float64(tOp)/float64(tBase), "ratio-vs-"+baseName)
}

// BenchmarkVaultRegister: register throughput through the signed HTTP API,
// 32 callers (cardholders) at once, each registering a distinct national
// id (so every call writes), beside 32 writers at once inserting a raw row of the same
// size, each its own transaction, under the same pragmas (WAL,
// synchronous=FULL) through one connection — as fast as raw SQLite
// inserts go at that durability. The vault group-commits concurrent
// registrations; independent raw transactions cannot share a commit.
func BenchmarkVaultRegister(b *testing.B) {
	v := newVaultStack(b)
	ctx := context.Background()
	parallelPaired(b, callers, func(i int) {
		if _, err := v.holders[i%callers].Register(ctx, api.TypeNationalID, "bench", false, []byte(fmt.Sprintf("ID%08d", i))); err != nil {
			b.Error(err)
		}
	}, v.rawInsert(b, len("ID00000000")), "sqlite-insert")
}

// revealCallers is how many owners reveal at once in BenchmarkVaultReveal.
const revealCallers = 8

// BenchmarkVaultReveal: owner reveals through the signed HTTP API, each
// audited durably before it answers (the vault group-commits the audit
// entries of concurrent reveals), from revealCallers cardholders at once,
// each revealing its own address, beside revealCallers readers at once
// selecting a row of the same size from a raw SQLite table (WAL, a
// connection per reader).
func BenchmarkVaultReveal(b *testing.B) {
	v, tokens, read := newRevealStack(b)
	ctx := context.Background()
	parallelPaired(b, revealCallers, func(i int) {
		if _, err := v.holders[i%revealCallers].RevealOwn(ctx, tokens[i%revealCallers]); err != nil {
			b.Error(err)
		}
	}, rawSelect(b, read), "sqlite-select")
}

// BenchmarkVaultSignedFloor: the floor a signed request sets under
// BenchmarkVaultReveal. The same cardholders, at once, list their own
// tokens (one each): a signed round trip with its nonce and one index
// query, no value read, no audit entry, no commit to wait for; beside the
// same raw select.
func BenchmarkVaultSignedFloor(b *testing.B) {
	v, _, read := newRevealStack(b)
	ctx := context.Background()
	parallelPaired(b, revealCallers, func(i int) {
		if es, err := v.holders[i%revealCallers].List(ctx); err != nil || len(es) != 1 {
			b.Errorf("list: %d entries, %v", len(es), err)
		}
	}, rawSelect(b, read), "sqlite-select")
}

// newRevealStack is a vault stack whose first revealCallers cardholders
// have registered one address each (tokens), with the raw table holding
// one row of the same size and read, a connection per reader to it.
func newRevealStack(b *testing.B) (v *vaultStack, tokens []string, read *sql.DB) {
	v = newVaultStack(b)
	ctx := context.Background()
	tokens = make([]string, revealCallers)
	for i := range tokens {
		res, err := v.holders[i].Register(ctx, api.TypeAddress, "home", false, v.value)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = res.Token
	}
	v.rawInsert(b, len(v.value))(1)
	read, err := sqlitex.Open(v.rawPath, sqlitex.ReadOnly(), sqlitex.MaxConns(revealCallers))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { read.Close() })
	return v, tokens, read
}

// rawSelect selects the raw row through read.
func rawSelect(b *testing.B, read *sql.DB) func(int) {
	return func(int) {
		var ct []byte
		if err := read.QueryRow(`SELECT ct FROM rec WHERE token = ?`, "tok_1").Scan(&ct); err != nil {
			b.Error(err)
		}
	}
}

// batchAddresses is how many addresses BenchmarkVaultBatchRegister
// tokenizes each way; batchCallers send the batches (one a core here: the
// vault opens and normalises one request's entries while it commits
// another's).
const (
	batchAddresses = 10000
	batchCallers   = 2
)

// BenchmarkVaultBatchRegister: one op is tokenizing 10 000 distinct
// addresses through the signed HTTP API in batches (api.MaxBatchItems per
// signed request, one durable commit each, from batchCallers clients), beside the same
// number of single registrations from 32 concurrent cardholders (each its
// own signed request, group-committed as the vault does; one cardholder
// alone may not send 10 000 requests within the clock window, the vault's
// nonce quota of a person is 6 000), both on a fresh vault of the same
// run. ns/op is the batches' time; single-ns/op the single requests'.
func BenchmarkVaultBatchRegister(b *testing.B) {
	ctx := context.Background()
	addr := func(run, i int) []byte {
		return []byte(fmt.Sprintf(`{"name":"Kim Minsu","line1":"테헤란로 %d-%d","city":"강남구","region":"서울특별시","postal_code":"06236","country":"KR"}`, run, i))
	}
	var tSingle time.Duration
	for run := range b.N {
		b.StopTimer()
		v := newVaultStack(b)
		entries := make([]api.BatchEntry, batchAddresses)
		for i := range entries {
			entries[i] = api.BatchEntry{Type: api.TypeAddress, Label: "b", Value: addr(2*run, i)}
		}
		// Warm both paths up (pairwise keys, connections), outside the timings.
		if _, err := v.client.RegisterBatch(ctx, []api.BatchEntry{{Type: api.TypeAddress, Value: addr(-1, 0)}}); err != nil {
			b.Fatal(err)
		}
		if _, err := v.client.Register(ctx, api.TypeAddress, "", false, addr(-1, 1)); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		var nextBatch atomic.Int64
		var bwg sync.WaitGroup
		for range batchCallers {
			bwg.Go(func() {
				for from := int(nextBatch.Add(api.MaxBatchItems)) - api.MaxBatchItems; from < len(entries); from = int(nextBatch.Add(api.MaxBatchItems)) - api.MaxBatchItems {
					res, err := v.client.RegisterBatch(ctx, entries[from:min(from+api.MaxBatchItems, len(entries))])
					if err != nil {
						b.Error(err)
						return
					}
					for _, r := range res {
						if r.Code != "" || !r.Created {
							b.Errorf("batch entry: %+v", r)
							return
						}
					}
				}
			})
		}
		bwg.Wait()
		b.StopTimer()
		runtime.GC()
		singles := v.holders
		for i, h := range singles { // warm each cardholder's pairwise key and connection
			if _, err := h.Register(ctx, api.TypeAddress, "", false, addr(-2, i)); err != nil {
				b.Fatal(err)
			}
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		t0 := time.Now()
		for c := range callers {
			wg.Go(func() {
				for i := int(next.Add(1)); i <= batchAddresses; i = int(next.Add(1)) {
					if r, err := singles[c].Register(ctx, api.TypeAddress, "s", false, addr(2*run+1, i)); err != nil || !r.Created {
						b.Errorf("single %d: %+v %v", i, r, err)
						return
					}
				}
			})
		}
		wg.Wait()
		tSingle += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(tSingle.Nanoseconds())/float64(b.N), "single-ns/op")
}
