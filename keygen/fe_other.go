//go:build !amd64 || purego

package keygen

import fp "github.com/cloudflare/circl/math/fp25519"

// Without the amd64 kernels, fe.go's portable code does all the work.
const (
	haveADX  = false
	haveAVX2 = false
)

var (
	useADX  = false
	useAVX2 = false
)

func dotAddADX(w *wide, a, b *fp.Elt, n int) { panic("keygen: no ADX kernel on this platform") }

func winogradAddADX(w *wide, d, v *fp.Elt, n int) { panic("keygen: no ADX kernel on this platform") }

func rnsBlockAVX2(blk *[32]uint64, a *uint32, lda int, v *uint32, ldv int, kk int) {
	panic("keygen: no AVX2 kernel on this platform")
}
