//go:build amd64 && !purego

package center

import "golang.org/x/sys/cpu"

// haveAVX2 reports whether the CPU can run rns_amd64.s; useAVX2 selects
// batch issuance by residues (rns.go) over batch.go's Strassen plan.
var (
	haveAVX2 = cpu.X86.HasAVX2
	useAVX2  = haveAVX2
)

//go:noescape
func rnsBlockAVX2(blk *[32]uint64, a *uint32, lda int, v *uint32, ldv int, kk int)
