package center

import (
	"fmt"
	"testing"

	"github.com/cloudflare/circl/ecc/bls12381"

	"orderseal/keygen"
	"orderseal/suite/os2"
)

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
	return m
}

func BenchmarkOS2Parts(b *testing.B) {
	m := benchEpochMaster(b)
	sys := m.params.System
	b.Run("H1", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			os2.H1(sys, fmt.Sprintf("cardholder:u%d", i), "2026-12")
		}
	})
	b.Run("H2", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			os2.H2(sys, fmt.Sprintf("cardholder:u%d", i), "2026-12")
		}
	})
	h1 := os2.H1(sys, "x:y", "2026-12")
	h2 := os2.H2(sys, "x:y", "2026-12")
	b.Run("G1mul", func(b *testing.B) {
		var p bls12381.G1
		for b.Loop() {
			p.ScalarMult(m.secrets.sok, h1)
		}
	})
	b.Run("G2mul", func(b *testing.B) {
		var p bls12381.G2
		for b.Loop() {
			p.ScalarMult(m.secrets.sok, h2)
		}
	})
	b.Run("compress", func(b *testing.B) {
		for b.Loop() {
			h1.BytesCompressed()
			h2.BytesCompressed()
		}
	})
	b.Run("sokKey", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			m.sokKey(fmt.Sprintf("cardholder:u%d", i))
		}
	})
}

func BenchmarkIssueManyOS2(b *testing.B) {
	m := benchEpochMaster(b)
	ids := make([]string, batchGroup)
	for i := range ids {
		ids[i] = fmt.Sprintf("cardholder:u%d", i)
	}
	if _, err := m.IssueMany(ids[:1]); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.IssueMany(ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/identity")
}

func BenchmarkIssueBatchOS2Disk(b *testing.B) {
	m := benchEpochMaster(b)
	c := &Center{master: m}
	m.prepareBatch()
	n := 0
	for b.Loop() {
		ids := make([]string, 512)
		for i := range ids {
			ids[i] = fmt.Sprintf("cardholder:u%d", n)
			n++
		}
		dir := b.TempDir()
		for _, r := range c.IssueBatch(b.Context(), ids, dir, nil) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/identity")
}
