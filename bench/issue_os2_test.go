package bench

import (
	"testing"

	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/suite/os2"
)

// BenchmarkIssueOS2 is BenchmarkIssue under suite OS2: for each identity
// its row of the epoch's matrix at k = 1024 and its identity-based key
// d1 = s·H1(id), d2 = s·H2(id), issued in groups of 64 (IssueMany) beside
// one identity at a time (Issue). The projection to 100 000 identities
// divides one core's time by the cores, as the batch issues on every core
// (keygen/center's BenchmarkIssueBatchOS2 measures that, with the disk).
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
	benchIssue(b, m, "cardholder:v")
}
