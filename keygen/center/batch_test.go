package center

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen"
	"orderseal/keygen/internal/field"
	"orderseal/keygen/internal/kat"
)

// Batch issuance (batch.go, the new IssueBatch) must give the very keys
// Issue gives, one identity at a time, for every plan shape.

// eachBatchPath runs f once per way rowsMany can go on this machine: by
// residues (AVX2), and by the Strassen plan with each kernel.
func eachBatchPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, path := range []struct {
		name      string
		avx2, adx bool
	}{{"residues", true, true}, {"strassen-adx", false, true}, {"strassen-generic", false, false}} {
		t.Run(path.name, func(t *testing.T) {
			if path.avx2 && !haveAVX2 || path.adx && !field.HaveADX() {
				t.Skip("CPU lacks the instructions (or build is purego/not amd64)")
			}
			savedAVX2, savedADX := useAVX2, field.UseADX(path.adx)
			useAVX2 = path.avx2
			defer func() { useAVX2 = savedAVX2; field.UseADX(savedADX) }()
			f(t)
		})
	}
}

// withPlanLimits runs f with leafMin and planMaxBytes set, so that small k
// reach every Strassen depth (or none, and the fallback to Master.row).
func withPlanLimits(t *testing.T, leaf, maxBytes int, f func()) {
	t.Helper()
	savedLeaf, savedMax := leafMin, planMaxBytes
	leafMin, planMaxBytes = leaf, maxBytes
	defer func() { leafMin, planMaxBytes = savedLeaf, savedMax }()
	f()
}

func TestPlanShape(t *testing.T) {
	for _, tc := range []struct {
		k, size, level int
		ok             bool
	}{
		{1, 2, 0, true},
		{2, 2, 0, true},
		{3, 4, 0, true},
		{64, 64, 0, true},
		{255, 256, 1, true},
		{300, 300, 1, true},
		{512, 512, 2, true},
		{1024, 1024, 3, true},
		{1000, 1000, 2, true},
		{2048, 2048, 1, true},
		{4096, 0, 0, false}, // every shape above planMaxBytes: Master.row
	} {
		size, level, ok := planShape(tc.k)
		if size != tc.size || level != tc.level || ok != tc.ok {
			t.Errorf("planShape(%d) = %d, %d, %v; want %d, %d, %v", tc.k, size, level, ok, tc.size, tc.level, tc.ok)
		}
	}
}

// sameKey fails unless got is bit for bit the key want, file bytes included.
func sameKey(t *testing.T, got, want *keygen.PartyKey) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: batch key differs from Issue", want.Identity())
	}
	gj, err := got.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	wj, err := want.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gj, wj) {
		t.Fatalf("%s: batch key file differs from Issue's", want.Identity())
	}
}

func TestIssueManyMatchesIssue(t *testing.T) {
	eachBatchPath(t, testIssueManyMatchesIssue)
}

func testIssueManyMatchesIssue(t *testing.T) {
	r := testRand("issue many")
	for _, tc := range []struct {
		k, leafMin, maxBytes, level int // level −1: no plan, Master.row
	}{
		{1, 128, 256 << 20, 0},
		{2, 128, 256 << 20, 0},
		{3, 128, 256 << 20, 0},
		{5, 4, 256 << 20, 1},
		{16, 2, 256 << 20, 3},
		{33, 10, 256 << 20, 2},
		{64, 8, 256 << 20, 3},
		{100, 8, 256 << 20, 3},
		{100, 8, 64 * 64 * 32 * 7, 1},
		{100, 8, 1024, -1},
	} {
		t.Run(fmt.Sprintf("k=%d/level=%d", tc.k, tc.level), func(t *testing.T) {
			withPlanLimits(t, tc.leafMin, tc.maxBytes, func() {
				m := testMaster(t, tc.k, r)
				n := 2*batchGroup + 3 // two full groups and a short one
				ids := make([]string, n)
				for i := range ids {
					ids[i] = randomID(r, []string{"cardholder", "merchant", "issuer"}[i%3])
				}
				keys, err := m.IssueMany(ids)
				if err != nil {
					t.Fatal(err)
				}
				if useAVX2 && rnsPlanBytes(tc.k) <= tc.maxBytes {
					if rp := m.residuePlan(); rp == nil || m.plan != nil {
						t.Fatalf("k=%d: no residue plan, or a Strassen plan built for nothing", tc.k)
					}
				} else if p := m.batchPlan(); (p == nil) != (tc.level < 0) || (p != nil && p.level != tc.level) {
					t.Fatalf("plan %+v, want level %d", p, tc.level)
				}
				if len(keys) != n {
					t.Fatalf("%d keys for %d identities", len(keys), n)
				}
				for i, k := range keys {
					if k.Identity() != ids[i] || !k.Params().Equal(m.Params()) {
						t.Fatalf("key %d is %s, want %s", i, k.Identity(), ids[i])
					}
					if i%7 == 0 || i == n-1 {
						sameKey(t, k, mustIssue(t, m, ids[i]))
					}
				}
				// A single identity (a group padded to 2^level columns).
				one, err := m.IssueMany(ids[5:6])
				if err != nil {
					t.Fatal(err)
				}
				sameKey(t, one[0], keys[5])
			})
		})
	}
}

// TestIssueManyDefaultK: the production shape (k = 1024, three Strassen
// levels), a few identities checked against Issue.
func TestIssueManyDefaultK(t *testing.T) {
	eachBatchPath(t, testIssueManyDefaultK)
}

func testIssueManyDefaultK(t *testing.T) {
	r := testRand("issue many 1024")
	m := testMaster(t, keygen.DefaultK, r)
	ids := []string{randomID(r, "cardholder"), randomID(r, "merchant"), randomID(r, "cardholder")}
	keys, err := m.IssueMany(ids)
	if err != nil {
		t.Fatal(err)
	}
	if !useAVX2 {
		if p := m.batchPlan(); p == nil || p.level != 3 {
			t.Fatalf("k=%d: plan %+v, want three levels", keygen.DefaultK, p)
		}
	}
	for i, id := range ids {
		sameKey(t, keys[i], mustIssue(t, m, id))
	}
}

// TestIssueManyKAT: the known-answer rows, issued in one batch, at every
// Strassen depth the KAT sizes allow.
func TestIssueManyKAT(t *testing.T) {
	eachBatchPath(t, testIssueManyKAT)
}

func testIssueManyKAT(t *testing.T) {
	doc := kat.Load(t)
	var seed [32]byte
	copy(seed[:], kat.Hex(t, "inputs.seed", doc.Inputs.Seed, 32))
	var system [16]byte
	copy(system[:], kat.Hex(t, "inputs.system", doc.Inputs.System, 16))
	checked := 0
	for _, v := range doc.Vectors {
		for _, leaf := range []int{2, 4, 8, 1 << 20} {
			withPlanLimits(t, leaf, 256<<20, func() {
				m, err := MasterFromSeed(keygen.Params{Suite: keygen.SuiteOS1, System: system, K: v.K}, seed)
				if err != nil {
					t.Fatal(err)
				}
				ids := make([]string, len(v.Identities))
				for i, id := range v.Identities {
					ids[i] = id.ID
				}
				keys, err := m.IssueMany(ids)
				if err != nil {
					t.Fatal(err)
				}
				for i, id := range v.Identities {
					row := rowOf(t, keys[i])
					switch {
					case id.Row != nil:
						for a, want := range id.Row {
							if got := eltHex(row[a]); got != want {
								t.Fatalf("k=%d leaf≥%d %s: r_%d = %s, want %s", v.K, leaf, id.ID, a, got, want)
							}
						}
					default:
						for a, want := range id.RowFirst4 {
							if got := eltHex(row[a]); got != want {
								t.Fatalf("k=%d leaf≥%d %s: r_%d = %s, want %s", v.K, leaf, id.ID, a, got, want)
							}
						}
						h := sha256.New()
						var b [fp.Size]byte
						for a := range row {
							field.Encode(b[:], &row[a])
							h.Write(b[:])
						}
						if got := hex.EncodeToString(h.Sum(nil)); got != id.RowSHA256 {
							t.Fatalf("k=%d leaf≥%d %s: SHA-256(row) = %s, want %s", v.K, leaf, id.ID, got, id.RowSHA256)
						}
					}
					checked++
				}
			})
		}
	}
	if checked == 0 {
		t.Fatal("no known-answer rows checked")
	}
}

func TestIssueManyRefusals(t *testing.T) {
	m := testMaster(t, 4, testRand("issue many refusals"))
	if keys, err := m.IssueMany(nil); err != nil || len(keys) != 0 {
		t.Fatalf("IssueMany(nil) = %v, %v", keys, err)
	}
	_, err := m.IssueMany([]string{"merchant:ok", "merchant:Bad", "merchant:ok2"})
	if !errors.Is(err, keygen.ErrIdentity) || !bytes.Contains([]byte(err.Error()), []byte("identity 1")) {
		t.Fatalf("err = %v, want keygen.ErrIdentity naming identity 1", err)
	}
}

func TestDestroyClearsPlan(t *testing.T) {
	withPlanLimits(t, 4, 256<<20, func() {
		m := testMaster(t, 32, testRand("destroy plan"))
		if _, err := m.IssueMany([]string{"merchant:a"}); err != nil {
			t.Fatal(err)
		}
		p := m.batchPlan()
		if p == nil || p.level == 0 {
			t.Fatalf("plan %+v, want a split one", p)
		}
		var leaves []*node
		var walk func(nd *node)
		walk = func(nd *node) {
			if nd.a != nil {
				leaves = append(leaves, nd)
			}
			for _, c := range nd.child {
				if c != nil {
					walk(c)
				}
			}
		}
		walk(p.root)
		var residues [][]uint32
		if haveAVX2 {
			saved := useAVX2
			useAVX2 = true
			if rp := m.residuePlan(); rp != nil {
				residues = rp.a[:]
			}
			useAVX2 = saved
			if residues == nil {
				t.Fatal("no residue plan")
			}
		}
		m.Destroy()
		if m.plan != nil || m.rns != nil {
			t.Fatal("Destroy kept a plan")
		}
		for _, a := range residues {
			for _, v := range a {
				if v != 0 {
					t.Fatal("Destroy left residues of D in memory")
				}
			}
		}
		for _, lf := range leaves {
			for i := range lf.a {
				if lf.a[i] != (fp.Elt{}) {
					t.Fatal("Destroy left a leaf matrix in memory")
				}
			}
			for i := range lf.negXi {
				if lf.negXi[i] != (fp.Elt{}) {
					t.Fatal("Destroy left a leaf's ξ in memory")
				}
			}
		}
	})
}

// TestIssueBatchGroups: a batch of several groups with failures mixed in;
// every key file equals Issue's, every identity is reported once.
func TestIssueBatchGroups(t *testing.T) {
	eachBatchPath(t, testIssueBatchGroups)
}

func testIssueBatchGroups(t *testing.T) {
	dir := t.TempDir()
	c := initCenter(t, filepath.Join(dir, "center"), 16)
	defer c.Close()
	out := filepath.Join(dir, "keys")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	r := testRand("issue batch groups")
	ids := make([]string, 2*batchGroup+10)
	want := map[int]error{}
	for i := range ids {
		ids[i] = randomID(r, "cardholder")
		switch i % 29 {
		case 3:
			ids[i] = fmt.Sprintf("cardholder:Upper%d", i)
			want[i] = keygen.ErrIdentity
		case 11:
			if err := os.WriteFile(filepath.Join(out, keygen.KeyFileName(ids[i])), []byte("precious\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			want[i] = os.ErrExist
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	results := c.IssueBatch(context.Background(), ids, out, func(r BatchResult) {
		mu.Lock()
		seen[r.Identity]++
		mu.Unlock()
	})
	for i, res := range results {
		if res.Identity != ids[i] || seen[ids[i]] != 1 {
			t.Fatalf("result %d is for %q (reported %d times), want %q once", i, res.Identity, seen[ids[i]], ids[i])
		}
		if w, bad := want[i]; bad {
			if !errors.Is(res.Err, w) {
				t.Fatalf("%s: err = %v, want %v", ids[i], res.Err, w)
			}
			continue
		}
		if res.Err != nil {
			t.Fatalf("%s: %v", ids[i], res.Err)
		}
		k, err := keygen.LoadPartyKey(res.Path)
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			iss, err := c.Issue(ids[i])
			if err != nil {
				t.Fatal(err)
			}
			sameKey(t, k, iss)
		}
	}
	for i, w := range want {
		if w == os.ErrExist {
			if b, _ := os.ReadFile(filepath.Join(out, keygen.KeyFileName(ids[i]))); string(b) != "precious\n" {
				t.Fatalf("batch overwrote %s", ids[i])
			}
		}
	}
}

// TestIssueBatchCancelMidway: cancelling while the batch runs stops it;
// what was not started fails with context.Canceled and leaves no file.
func TestIssueBatchCancelMidway(t *testing.T) {
	dir := t.TempDir()
	c := initCenter(t, filepath.Join(dir, "center"), 8)
	defer c.Close()
	out := t.TempDir()
	ids := make([]string, 20*batchGroup)
	for i := range ids {
		ids[i] = fmt.Sprintf("cardholder:c%d", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	calls := 0
	results := c.IssueBatch(ctx, ids, out, func(BatchResult) {
		mu.Lock()
		calls++
		if calls == 10 {
			cancel()
		}
		mu.Unlock()
	})
	if calls != len(ids) {
		t.Fatalf("done called %d times for %d identities", calls, len(ids))
	}
	var issued, cancelled int
	for _, r := range results {
		switch {
		case r.Err == nil:
			issued++
			if _, err := os.Stat(r.Path); err != nil {
				t.Fatalf("%s reported issued: %v", r.Identity, err)
			}
		case errors.Is(r.Err, context.Canceled):
			cancelled++
			if _, err := os.Stat(filepath.Join(out, keygen.KeyFileName(r.Identity))); err == nil {
				t.Fatalf("%s cancelled but its file exists", r.Identity)
			}
		default:
			t.Fatalf("%s: %v", r.Identity, r.Err)
		}
	}
	if cancelled == 0 || issued == 0 {
		t.Fatalf("issued %d, cancelled %d: want some of each", issued, cancelled)
	}
}

func BenchmarkIssueMany(b *testing.B) {
	m, err := MasterFromSeed(keygen.Params{Suite: keygen.SuiteOS1, System: [16]byte{3}, K: keygen.DefaultK}, [32]byte{3})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, batchGroup)
	for i := range ids {
		ids[i] = fmt.Sprintf("cardholder:u%d", i)
	}
	if _, err := m.IssueMany(ids[:1]); err != nil { // builds the plan
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.IssueMany(ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/identity")
}

// TestArenaSize: the arena rows sizes beforehand is never outgrown, and
// release clears what it takes back.
func TestArenaSize(t *testing.T) {
	r := testRand("arena")
	for _, tc := range []struct{ k, leaf, groups int }{{16, 2, 1}, {64, 8, 3}, {100, 8, 1}, {33, 10, 2}, {7, 128, 5}} {
		withPlanLimits(t, tc.leaf, 256<<20, func() {
			m := testMaster(t, tc.k, r)
			m.expand()
			p := m.batchPlan()
			cols := tc.groups << p.level
			need := cols*p.size + p.root.peak(cols)
			ar := &arena{buf: make([]fp.Elt, need)}
			first := &ar.buf[0]
			in := ar.cols(cols, p.size)
			for c := range in {
				x := eltOf(randBelow(r, bigP))
				powersSwapped(in[c], p.k, &x)
			}
			p.root.mul(ar, in)
			if &ar.buf[0] != first || len(ar.buf) != need {
				t.Fatalf("k=%d level %d, %d columns: the arena outgrew its %d elements", tc.k, p.level, cols, need)
			}
			ar.release(0)
			for i := range ar.buf {
				if ar.buf[i] != (fp.Elt{}) {
					t.Fatalf("k=%d: release left element %d", tc.k, i)
				}
			}
		})
	}
}
