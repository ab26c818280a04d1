#include "textflag.h"

// func transposeAVX(dst, src *float32, ld, rows, width, k int)
//
// Writes dst[p*width+r] = src[r*ld+p] for r < rows, p < k; rows must be a multiple of 4 and
// k of 8. Each step transposes a 4×8 block as two 4×4 transposes, one per 128-bit lane.
TEXT ·transposeAVX(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), DX
	SHLQ $2, DX
	MOVQ rows+24(FP), R12
	MOVQ width+32(FP), R13
	SHLQ $2, R13
	MOVQ k+40(FP), R14
	CMPQ R12, $4
	JL   done

rowloop:
	MOVQ SI, R8
	LEAQ (SI)(DX*1), R9
	LEAQ (SI)(DX*2), R10
	LEAQ (R9)(DX*2), R11
	MOVQ DI, BX
	MOVQ R14, CX
	CMPQ CX, $8
	JL   nextrows

kloop:
	VMOVUPS (R8), Y0
	VMOVUPS (R9), Y1
	VMOVUPS (R10), Y2
	VMOVUPS (R11), Y3
	VUNPCKLPS Y1, Y0, Y4 // a0 b0 a1 b1 | a4 b4 a5 b5
	VUNPCKHPS Y1, Y0, Y5 // a2 b2 a3 b3 | a6 b6 a7 b7
	VUNPCKLPS Y3, Y2, Y6 // c0 d0 c1 d1 | c4 d4 c5 d5
	VUNPCKHPS Y3, Y2, Y7 // c2 d2 c3 d3 | c6 d6 c7 d7
	VUNPCKLPD Y6, Y4, Y0 // k0 | k4
	VUNPCKHPD Y6, Y4, Y1 // k1 | k5
	VUNPCKLPD Y7, Y5, Y2 // k2 | k6
	VUNPCKHPD Y7, Y5, Y3 // k3 | k7
	VMOVUPS X0, (BX)
	VMOVUPS X1, (BX)(R13*1)
	VMOVUPS X2, (BX)(R13*2)
	LEAQ    (BX)(R13*2), AX
	VMOVUPS X3, (AX)(R13*1)
	LEAQ    (BX)(R13*4), AX
	VEXTRACTF128 $1, Y0, (AX)
	VEXTRACTF128 $1, Y1, (AX)(R13*1)
	VEXTRACTF128 $1, Y2, (AX)(R13*2)
	LEAQ    (AX)(R13*2), AX
	VEXTRACTF128 $1, Y3, (AX)(R13*1)
	LEAQ    (BX)(R13*8), BX
	ADDQ    $32, R8
	ADDQ    $32, R9
	ADDQ    $32, R10
	ADDQ    $32, R11
	SUBQ    $8, CX
	CMPQ    CX, $8
	JGE     kloop

nextrows:
	LEAQ (SI)(DX*4), SI
	ADDQ $16, DI
	SUBQ $4, R12
	CMPQ R12, $4
	JGE  rowloop

done:
	VZEROUPPER
	RET
