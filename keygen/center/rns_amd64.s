//go:build amd64 && !purego

#include "textflag.h"

// func rnsBlockAVX2(blk *[32]uint64, a *uint32, lda int, v *uint32, ldv int, kk int)
//
// blk[8·j + l] = Σ_{t<kk} a[j·lda + t]·v[t·ldv + l], for 4 rows j and 8
// columns l of 32-bit residues: eight accumulators of four 64-bit lanes
// (Y0–Y7), a[j·lda + t] broadcast (Y10), the two halves of v's row t
// widened to 64-bit lanes (Y8, Y9). VPMULUDQ multiplies the low 32 bits of
// each lane; rns.go keeps every sum below 2^64. No branch but the loop on
// kk.
TEXT ·rnsBlockAVX2(SB), NOSPLIT, $0-48
	MOVQ blk+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	SHLQ $2, R8
	MOVQ v+24(FP), BX
	MOVQ ldv+32(FP), R12
	SHLQ $2, R12
	MOVQ kk+40(FP), CX
	LEAQ (SI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	XORQ AX, AX
	TESTQ CX, CX
	JLE  done

loop:
	VPMOVZXDQ 0(BX), Y8
	VPMOVZXDQ 16(BX), Y9
	VPBROADCASTD (SI)(AX*4), Y10
	VPMULUDQ Y8, Y10, Y11
	VPADDQ   Y11, Y0, Y0
	VPMULUDQ Y9, Y10, Y11
	VPADDQ   Y11, Y1, Y1
	VPBROADCASTD (R9)(AX*4), Y10
	VPMULUDQ Y8, Y10, Y11
	VPADDQ   Y11, Y2, Y2
	VPMULUDQ Y9, Y10, Y11
	VPADDQ   Y11, Y3, Y3
	VPBROADCASTD (R10)(AX*4), Y10
	VPMULUDQ Y8, Y10, Y11
	VPADDQ   Y11, Y4, Y4
	VPMULUDQ Y9, Y10, Y11
	VPADDQ   Y11, Y5, Y5
	VPBROADCASTD (R11)(AX*4), Y10
	VPMULUDQ Y8, Y10, Y11
	VPADDQ   Y11, Y6, Y6
	VPMULUDQ Y9, Y10, Y11
	VPADDQ   Y11, Y7, Y7
	ADDQ R12, BX
	INCQ AX
	CMPQ AX, CX
	JNE  loop

done:
	VMOVDQU Y0, 0(DI)
	VMOVDQU Y1, 32(DI)
	VMOVDQU Y2, 64(DI)
	VMOVDQU Y3, 96(DI)
	VMOVDQU Y4, 128(DI)
	VMOVDQU Y5, 160(DI)
	VMOVDQU Y6, 192(DI)
	VMOVDQU Y7, 224(DI)
	VZEROUPPER
	RET
