//go:build amd64 && !purego

package keygen

import (
	fp "github.com/cloudflare/circl/math/fp25519"
	"golang.org/x/sys/cpu"
)

// haveADX reports whether the CPU can run the kernels of fe_amd64.s.
var haveADX = cpu.X86.HasBMI2 && cpu.X86.HasADX

// useADX selects them; tests turn it off to check the portable code.
var useADX = haveADX

// haveAVX2 reports whether the CPU can run rns_amd64.s; useAVX2 selects
// batch issuance by residues (rns.go) over batch.go's Strassen plan.
var (
	haveAVX2 = cpu.X86.HasAVX2
	useAVX2  = haveAVX2
)

//go:noescape
func dotAddADX(w *wide, a, b *fp.Elt, n int)

//go:noescape
func winogradAddADX(w *wide, d, v *fp.Elt, n int)

//go:noescape
func rnsBlockAVX2(blk *[32]uint64, a *uint32, lda int, v *uint32, ldv int, kk int)
