//go:build !amd64 || purego

package center

// Without the amd64 kernel, batch issuance takes batch.go's Strassen plan.
const haveAVX2 = false

var useAVX2 = false

func rnsBlockAVX2(blk *[32]uint64, a *uint32, lda int, v *uint32, ldv int, kk int) {
	panic("keygen: no AVX2 kernel on this platform")
}
