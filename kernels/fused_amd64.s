#include "textflag.h"

// func reluAVX2(y, x *float32, n int)
// y[i] = max(x[i], 0) for i < n (n a multiple of 8), as reluSpan: NaN and −0 stay. VMAXPS
// returns its second source when either is NaN or both are zeros, so x goes there.
TEXT ·reluAVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VXORPS Y2, Y2, Y2
	SHRQ $3, CX
	JZ rdone
	TESTQ $1, CX
	JZ rpairs
	VMOVUPS (SI), Y0
	VMAXPS Y0, Y2, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JZ rdone
rpairs:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMAXPS Y0, Y2, Y0
	VMAXPS Y1, Y2, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JNZ rpairs
rdone:
	VZEROUPPER
	RET

// func addReluAVX2(y, a, b *float32, n int, relu bool)
// y[i] = a[i] + b[i], then max(·, 0) as reluAVX2 when relu, for i < n (n a multiple of 8).
TEXT ·addReluAVX2(SB), NOSPLIT, $0-33
	MOVQ y+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	MOVBLZX relu+32(FP), AX
	VXORPS Y2, Y2, Y2
	SHRQ $3, CX
	JZ adone
	TESTQ AX, AX
	JZ aplain
aloop:
	VMOVUPS (SI), Y0
	VADDPS (DX), Y0, Y0
	VMAXPS Y0, Y2, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ aloop
	JMP adone
aplain:
	VMOVUPS (SI), Y0
	VADDPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ aplain
adone:
	VZEROUPPER
	RET

// func transposeStore8AVX(dst *float32, ldd int, src *float32, lds int, bias, res *float32, n int, relu bool)
// For i < n (a multiple of 8) and j < 8: dst[j·ldd + i] = src[i·lds + j] + bias[j]
// (+ res[j·ldd + i] when res is not nil; then max(·, 0) as reluAVX2 when relu): a pixel-major
// tile of 8 channels stored channel-major, 8×8 blocks transposed in registers.
TEXT ·transposeStore8AVX(SB), NOSPLIT, $0-57
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R10
	SHLQ $2, R10
	MOVQ bias+32(FP), BX
	MOVQ res+40(FP), R12
	MOVQ n+48(FP), CX
	MOVBLZX relu+56(FP), R13
	SHRQ $3, CX
	JZ tdone
tloop:
	// Rows: 8 pixels, each the 8 channels.
	MOVQ SI, R11
	VMOVUPS (R11), Y0
	ADDQ R10, R11
	VMOVUPS (R11), Y1
	ADDQ R10, R11
	VMOVUPS (R11), Y2
	ADDQ R10, R11
	VMOVUPS (R11), Y3
	ADDQ R10, R11
	VMOVUPS (R11), Y4
	ADDQ R10, R11
	VMOVUPS (R11), Y5
	ADDQ R10, R11
	VMOVUPS (R11), Y6
	ADDQ R10, R11
	VMOVUPS (R11), Y7
	ADDQ R10, R11
	MOVQ R11, SI
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	// Channel j is in Y8+j: bias, residual, ReLU, store.
	VBROADCASTSS 0(BX), Y0
	VADDPS Y0, Y8, Y8
	VBROADCASTSS 4(BX), Y0
	VADDPS Y0, Y9, Y9
	VBROADCASTSS 8(BX), Y0
	VADDPS Y0, Y10, Y10
	VBROADCASTSS 12(BX), Y0
	VADDPS Y0, Y11, Y11
	VBROADCASTSS 16(BX), Y0
	VADDPS Y0, Y12, Y12
	VBROADCASTSS 20(BX), Y0
	VADDPS Y0, Y13, Y13
	VBROADCASTSS 24(BX), Y0
	VADDPS Y0, Y14, Y14
	VBROADCASTSS 28(BX), Y0
	VADDPS Y0, Y15, Y15
	TESTQ R12, R12
	JZ tnores
	MOVQ R12, R11
	VADDPS (R11), Y8, Y8
	ADDQ R8, R11
	VADDPS (R11), Y9, Y9
	ADDQ R8, R11
	VADDPS (R11), Y10, Y10
	ADDQ R8, R11
	VADDPS (R11), Y11, Y11
	ADDQ R8, R11
	VADDPS (R11), Y12, Y12
	ADDQ R8, R11
	VADDPS (R11), Y13, Y13
	ADDQ R8, R11
	VADDPS (R11), Y14, Y14
	ADDQ R8, R11
	VADDPS (R11), Y15, Y15
	ADDQ $32, R12
tnores:
	TESTQ R13, R13
	JZ tstore
	VXORPS Y0, Y0, Y0
	VMAXPS Y8, Y0, Y8
	VMAXPS Y9, Y0, Y9
	VMAXPS Y10, Y0, Y10
	VMAXPS Y11, Y0, Y11
	VMAXPS Y12, Y0, Y12
	VMAXPS Y13, Y0, Y13
	VMAXPS Y14, Y0, Y14
	VMAXPS Y15, Y0, Y15
tstore:
	MOVQ DI, R11
	VMOVUPS Y8, (R11)
	ADDQ R8, R11
	VMOVUPS Y9, (R11)
	ADDQ R8, R11
	VMOVUPS Y10, (R11)
	ADDQ R8, R11
	VMOVUPS Y11, (R11)
	ADDQ R8, R11
	VMOVUPS Y12, (R11)
	ADDQ R8, R11
	VMOVUPS Y13, (R11)
	ADDQ R8, R11
	VMOVUPS Y14, (R11)
	ADDQ R8, R11
	VMOVUPS Y15, (R11)
	ADDQ $32, DI
	DECQ CX
	JNZ tloop
tdone:
	VZEROUPPER
	RET

// func packPanel12AVX(dst *float32, src *float32, plane int, offs *int32, taps, nc int)
// Packs one 12-pixel micro-panel for nc input channels: for channel c < nc and tap t < taps,
// the 12 floats at src[c·plane + offs[t]:] go to dst[(c·taps + t)·12:], or zeros where
// offs[t] is −1; entries of −2 are left to the caller.
TEXT ·packPanel12AVX(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ plane+16(FP), R8
	SHLQ $2, R8
	MOVQ offs+24(FP), BX
	MOVQ taps+32(FP), R9
	MOVQ nc+40(FP), CX
	VXORPS Y2, Y2, Y2
	TESTQ CX, CX
	JZ kdone
	TESTQ R9, R9
	JZ kdone
kchan:
	MOVQ BX, R10
	MOVQ R9, DX
ktap:
	MOVLQSX (R10), AX
	TESTQ AX, AX
	JS kneg
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS 32(SI)(AX*4), X1
	// The next panels of the row read the following values: fetch them ahead, across
	// the many rows a panel reads (too many streams for the hardware prefetcher).
	PREFETCHT0 256(SI)(AX*4)
	VMOVUPS Y0, (DI)
	VMOVUPS X1, 32(DI)
	JMP knext
kneg:
	CMPQ AX, $-1
	JNE knext
	VMOVUPS Y2, (DI)
	VMOVUPS X2, 32(DI)
knext:
	ADDQ $4, R10
	ADDQ $48, DI
	DECQ DX
	JNZ ktap
	ADDQ R8, SI
	DECQ CX
	JNZ kchan
kdone:
	VZEROUPPER
	RET

// func dup2AVX2(y, x *float32, n int)
// y[2i] = y[2i+1] = x[i] for i < n (n a positive multiple of 8).
TEXT ·dup2AVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
dloop:
	VMOVUPS (SI), Y0
	VUNPCKLPS Y0, Y0, Y1       // x0 x0 x1 x1 | x4 x4 x5 x5
	VUNPCKHPS Y0, Y0, Y2       // x2 x2 x3 x3 | x6 x6 x7 x7
	VPERM2F128 $0x20, Y2, Y1, Y3
	VPERM2F128 $0x31, Y2, Y1, Y4
	VMOVUPS Y3, (DI)
	VMOVUPS Y4, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	DECQ CX
	JNZ dloop
	VZEROUPPER
	RET
