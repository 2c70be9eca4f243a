package bench

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/suite/os2"
)

// BenchmarkIssueOS2 is BenchmarkIssue under suite OS2: for each identity
// its row of the epoch's matrix at k = 1024 and its identity-based key
// d1 = s·H1(id), d2 = s·H2(id), issued in groups of 64 (IssueMany); the
// baseline is one identity at a time (Issue). The projection to 100 000
// identities divides one core's time by the cores, as the batch issues on
// every core (keygen/center's BenchmarkIssueBatchOS2 measures that with
// the disk).
func BenchmarkIssueOS2(b *testing.B) {
	root, err := center.EpochMasterFromSeed(keygen.Params{Suite: os2.Name, System: [16]byte{0x15, 0x02}, K: keygen.DefaultK,
		Epochs: &keygen.Epochs{Period: keygen.PeriodMonth, Grace: keygen.DefaultGrace}}, [32]byte{0x15, 0x02})
	if err != nil {
		b.Fatal(err)
	}
	m, err := root.ForEpoch(os2Epoch)
	if err != nil {
		b.Fatal(err)
	}
	next := 0
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("cardholder:v%d", next)
			next++
		}
		return out
	}
	if _, err := m.IssueMany(ids(1)); err != nil { // expand the epoch's matrix outside the timing
		b.Fatal(err)
	}
	const group = 64
	var tOp, tBase time.Duration
	nBase := 0
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(group, b.N-done)
		batch := ids(n)
		t0 := time.Now()
		keys, err := m.IssueMany(batch)
		if err != nil {
			b.Fatal(err)
		}
		tOp += time.Since(t0)
		for _, k := range keys {
			k.Destroy()
		}
		done += n
		b.StopTimer()
		t1 := time.Now()
		k, err := m.Issue(ids(1)[0])
		if err != nil {
			b.Fatal(err)
		}
		tBase += time.Since(t1)
		k.Destroy()
		nBase++
		b.StartTimer()
	}
	perOp := float64(tOp.Nanoseconds()) / float64(b.N)
	perBase := float64(tBase.Nanoseconds()) / float64(nBase)
	b.ReportMetric(perBase, "naive-ns/op")
	b.ReportMetric(1e5*perOp/1e9/float64(runtime.GOMAXPROCS(0)), "s/100k-ids")
}
