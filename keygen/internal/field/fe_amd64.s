//go:build amd64 && !purego

#include "textflag.h"

// Multiply-accumulate kernels for fe.go, with BMI2 (MULX) and ADX (ADCX,
// ADOX); fe_amd64.go calls them only when the CPU has both. The code is
// straight-line over the operands: the only branch is the loop over n, a
// public length.
//
// Each iteration adds one 256×256-bit product s·t to a nine-limb
// accumulator kept on the stack (ACC, 0–64(SP)). s sits in R8–R11; t is
// read limb by limb into DX. The product runs row by row (one row per limb
// of t), with two carry chains: CF adds the previous row's limbs, OF the
// low halves of this row's products. The first row takes the
// accumulator's low four limbs as its "previous row", so they need no
// separate addition; its top four limbs are added at the end (ACCTOP).
// The live limbs rotate through five registers (R12–R15, DI), one of them
// free at each step, so that no limb is moved.

// ROW0 is the first row: ACC[0–3] + s·t0, with t0 at tr. It leaves limb 0
// in ACC[0] and limbs 1–4 in R12–R15; DI is free.
#define ROW0(tr, acc) \
	MOVQ  tr, DX;        XORL  AX, AX; \
	MULXQ R8, AX, R12;   ADCXQ 0+acc(SP), AX;   MOVQ AX, 0+acc(SP); \
	MULXQ R9, AX, R13;   ADCXQ 8+acc(SP), R12;  ADOXQ AX, R12; \
	MULXQ R10, AX, R14;  ADCXQ 16+acc(SP), R13; ADOXQ AX, R13; \
	MULXQ R11, AX, R15;  ADCXQ 24+acc(SP), R14; ADOXQ AX, R14; \
	MOVL  $0, AX;        ADCXQ AX, R15;         ADOXQ AX, R15

// ROW adds s·t_r (t_r at tr) to the four live limbs A, B, C, D (weights
// r … r+3); E is free. Limb r is final and goes to ACC at z. The new live
// limbs (weights r+1 … r+4) are E, A, B, C; D is then free.
#define ROW(tr, z, A, B, C, D, E) \
	MOVQ  tr, DX;        XORL  AX, AX; \
	MULXQ R8, AX, E;     ADCXQ A, AX;       MOVQ AX, z(SP); \
	MULXQ R9, AX, A;     ADCXQ B, E;        ADOXQ AX, E; \
	MULXQ R10, AX, B;    ADCXQ C, A;        ADOXQ AX, A; \
	MULXQ R11, AX, C;    ADCXQ D, B;        ADOXQ AX, B; \
	MOVL  $0, AX;        ADCXQ AX, C;       ADOXQ AX, C

// MULACC adds s·t to ACC, t's limbs at t0, t1, t2, t3.
#define MULACC(t0, t1, t2, t3, acc) \
	ROW0(t0, acc); \
	ROW(t1, 8+acc, R12, R13, R14, R15, DI); \
	ROW(t2, 16+acc, DI, R12, R13, R14, R15); \
	ROW(t3, 24+acc, R15, DI, R12, R13, R14); \
	ADDQ R14, 32+acc(SP); \
	ADCQ R15, 40+acc(SP); \
	ADCQ DI, 48+acc(SP); \
	ADCQ R12, 56+acc(SP); \
	ADCQ $0, 64+acc(SP)

// LOADACC copies the accumulator at w+0(FP) to ACC; STOREACC copies it back.
#define LOADACC \
	MOVQ w+0(FP), DI; \
	MOVQ  0(DI), AX; MOVQ AX,  0(SP); \
	MOVQ  8(DI), AX; MOVQ AX,  8(SP); \
	MOVQ 16(DI), AX; MOVQ AX, 16(SP); \
	MOVQ 24(DI), AX; MOVQ AX, 24(SP); \
	MOVQ 32(DI), AX; MOVQ AX, 32(SP); \
	MOVQ 40(DI), AX; MOVQ AX, 40(SP); \
	MOVQ 48(DI), AX; MOVQ AX, 48(SP); \
	MOVQ 56(DI), AX; MOVQ AX, 56(SP); \
	MOVQ 64(DI), AX; MOVQ AX, 64(SP)

// ZEROACC2 clears the second accumulator (72–136(SP)); FOLDACC2 adds it
// to the first.
#define ZEROACC2 \
	XORL AX, AX; \
	MOVQ AX, 72(SP); MOVQ AX, 80(SP); MOVQ AX, 88(SP); MOVQ AX, 96(SP); \
	MOVQ AX, 104(SP); MOVQ AX, 112(SP); MOVQ AX, 120(SP); MOVQ AX, 128(SP); \
	MOVQ AX, 136(SP)

#define FOLDACC2 \
	MOVQ  72(SP), AX; ADDQ AX,  0(SP); \
	MOVQ  80(SP), AX; ADCQ AX,  8(SP); \
	MOVQ  88(SP), AX; ADCQ AX, 16(SP); \
	MOVQ  96(SP), AX; ADCQ AX, 24(SP); \
	MOVQ 104(SP), AX; ADCQ AX, 32(SP); \
	MOVQ 112(SP), AX; ADCQ AX, 40(SP); \
	MOVQ 120(SP), AX; ADCQ AX, 48(SP); \
	MOVQ 128(SP), AX; ADCQ AX, 56(SP); \
	MOVQ 136(SP), AX; ADCQ AX, 64(SP)

#define STOREACC \
	MOVQ w+0(FP), DI; \
	MOVQ  0(SP), AX; MOVQ AX,  0(DI); \
	MOVQ  8(SP), AX; MOVQ AX,  8(DI); \
	MOVQ 16(SP), AX; MOVQ AX, 16(DI); \
	MOVQ 24(SP), AX; MOVQ AX, 24(DI); \
	MOVQ 32(SP), AX; MOVQ AX, 32(DI); \
	MOVQ 40(SP), AX; MOVQ AX, 40(DI); \
	MOVQ 48(SP), AX; MOVQ AX, 48(DI); \
	MOVQ 56(SP), AX; MOVQ AX, 56(DI); \
	MOVQ 64(SP), AX; MOVQ AX, 64(DI)

// DOTSTEP adds a[i]·b[i] to the accumulator at acc and moves to i+1.
#define DOTSTEP(acc) \
	MOVQ  0(SI), R8; \
	MOVQ  8(SI), R9; \
	MOVQ 16(SI), R10; \
	MOVQ 24(SI), R11; \
	MULACC(0(BX), 8(BX), 16(BX), 24(BX), acc); \
	ADDQ $32, SI; \
	ADDQ $32, BX

// WINSTEP adds (d[2j]+v[2j])·(d[2j+1]+v[2j+1]) to the accumulator at acc
// and moves to j+1; the second sum goes through 144–168(SP), to be read
// into DX row by row.
#define WINSTEP(acc) \
	MOVQ  0(SI), R8;  ADDQ  0(BX), R8; \
	MOVQ  8(SI), R9;  ADCQ  8(BX), R9; \
	MOVQ 16(SI), R10; ADCQ 16(BX), R10; \
	MOVQ 24(SI), R11; ADCQ 24(BX), R11; \
	MOVQ 32(SI), AX;  ADDQ 32(BX), AX; MOVQ AX, 144(SP); \
	MOVQ 40(SI), AX;  ADCQ 40(BX), AX; MOVQ AX, 152(SP); \
	MOVQ 48(SI), AX;  ADCQ 48(BX), AX; MOVQ AX, 160(SP); \
	MOVQ 56(SI), AX;  ADCQ 56(BX), AX; MOVQ AX, 168(SP); \
	MULACC(144(SP), 152(SP), 160(SP), 168(SP), acc); \
	ADDQ $64, SI; \
	ADDQ $64, BX

// Both kernels alternate between two accumulators (ACC and ACC2), so that
// consecutive products do not wait for each other's limbs.

// func dotAddADX(w *wide, a, b *fp.Elt, n int)
// w += Σ_{i<n} a[i]·b[i]
TEXT ·dotAddADX(SB), NOSPLIT, $144-32
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JLE  dotdone
	LOADACC
	TESTQ $1, CX
	JZ   dotpairs
	DOTSTEP(0)
	DECQ CX
	JZ   dotstore // a single product (Horner's s·x^B) needs no ACC2

dotpairs:
	ZEROACC2
	SHRQ $1, CX

dotloop:
	DOTSTEP(0)
	DOTSTEP(72)
	DECQ CX
	JNZ  dotloop

	FOLDACC2

dotstore:
	STOREACC

dotdone:
	RET

// func winogradAddADX(w *wide, d, v *fp.Elt, n int)
// w += Σ_{j<n} (d[2j]+v[2j])·(d[2j+1]+v[2j+1]); each sum must fit in
// 256 bits (it does when d and v hold values < 2^255).
TEXT ·winogradAddADX(SB), NOSPLIT, $176-32
	MOVQ d+8(FP), SI
	MOVQ v+16(FP), BX
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JLE  windone
	LOADACC
	ZEROACC2
	TESTQ $1, CX
	JZ   winpairs
	WINSTEP(0)
	DECQ CX
	JZ   winfold

winpairs:
	SHRQ $1, CX

winloop:
	WINSTEP(0)
	WINSTEP(72)
	DECQ CX
	JNZ  winloop

winfold:
	FOLDACC2
	STOREACC

windone:
	RET
