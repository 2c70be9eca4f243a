package center

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderseal/keygen"
	"orderseal/suite/os2"
)

// Issuance of OS2 keys at k = 1024 (DESIGN.md's goal: 100 000 identities
// on 2 cores in under 6 minutes). BenchmarkIssueOS2 is the arithmetic of
// IssueBatch without the disk: every core computing groups of rows and
// their d1 = s·H1(id), d2 = s·H2(id); it reports the wall time per
// identity and what 100 000 take at that rate, and the CPU time per
// identity (what a machine shared with other work still measures well:
// 100 000 on 2 idle cores take about cpu-ns/identity × 50 000).
// BenchmarkIssueBatchOS2 adds the key files (each synced).
//
//	go test ./keygen/center -run '^$' -bench 'IssueOS2|IssueBatchOS2' -benchtime 4x -cpu 2

func benchEpochMaster(b *testing.B) *Master {
	root, err := EpochMasterFromSeed(keygen.Params{Suite: os2.Name, System: [16]byte{3}, K: keygen.DefaultK,
		Epochs: &keygen.Epochs{Period: keygen.PeriodMonth, Grace: keygen.DefaultGrace}}, [32]byte{3})
	if err != nil {
		b.Fatal(err)
	}
	m, err := root.ForEpoch("2026-12")
	if err != nil {
		b.Fatal(err)
	}
	m.prepareBatch()
	return m
}

func BenchmarkIssueOS2(b *testing.B) {
	m := benchEpochMaster(b)
	const perOp = 512 // identities per iteration, in groups of batchGroup
	var next atomic.Int64
	cpu0 := cpuTime()
	for b.Loop() {
		groups := make(chan []string)
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for ids := range groups {
					keys, err := m.IssueMany(ids)
					if err != nil {
						b.Error(err)
						return
					}
					for _, k := range keys {
						k.Destroy()
					}
				}
			})
		}
		for g := 0; g < perOp; g += batchGroup {
			ids := make([]string, batchGroup)
			for i := range ids {
				ids[i] = fmt.Sprintf("cardholder:u%d@example.org", next.Add(1))
			}
			groups <- ids
		}
		close(groups)
		wg.Wait()
	}
	report(b, b.N*perOp, cpu0)
}

// report gives the wall and CPU time per identity of n identities.
func report(b *testing.B, n int, cpu0 time.Duration) {
	perID := float64(b.Elapsed().Nanoseconds()) / float64(n)
	cpu := float64((cpuTime() - cpu0).Nanoseconds()) / float64(n)
	b.ReportMetric(perID, "ns/identity")
	b.ReportMetric(perID*100000/1e9, "s/100k")
	b.ReportMetric(cpu, "cpu-ns/identity")
	b.ReportMetric(cpu*100000/2/1e9, "s/100k/2cores")
}

func BenchmarkIssueBatchOS2(b *testing.B) {
	c := &Center{master: benchEpochMaster(b)}
	const perOp = 512
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		ids := make([]string, perOp)
		for i := range ids {
			ids[i] = fmt.Sprintf("cardholder:u%d@example.org", n)
			n++
		}
		for _, r := range c.IssueBatch(b.Context(), ids, b.TempDir(), nil) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	report(b, n, cpu0)
}
