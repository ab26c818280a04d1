#include "textflag.h"

// Interleaving indices of winoOutputAVX512: lanes 2i, 2i+1 take element i of the first
// and the second table (lanes 0–15: elements 0–7; 16–31: elements 8–15).
DATA winoIdx<>+0(SB)/4, $0
DATA winoIdx<>+4(SB)/4, $16
DATA winoIdx<>+8(SB)/4, $1
DATA winoIdx<>+12(SB)/4, $17
DATA winoIdx<>+16(SB)/4, $2
DATA winoIdx<>+20(SB)/4, $18
DATA winoIdx<>+24(SB)/4, $3
DATA winoIdx<>+28(SB)/4, $19
DATA winoIdx<>+32(SB)/4, $4
DATA winoIdx<>+36(SB)/4, $20
DATA winoIdx<>+40(SB)/4, $5
DATA winoIdx<>+44(SB)/4, $21
DATA winoIdx<>+48(SB)/4, $6
DATA winoIdx<>+52(SB)/4, $22
DATA winoIdx<>+56(SB)/4, $7
DATA winoIdx<>+60(SB)/4, $23
DATA winoIdx<>+64(SB)/4, $8
DATA winoIdx<>+68(SB)/4, $24
DATA winoIdx<>+72(SB)/4, $9
DATA winoIdx<>+76(SB)/4, $25
DATA winoIdx<>+80(SB)/4, $10
DATA winoIdx<>+84(SB)/4, $26
DATA winoIdx<>+88(SB)/4, $11
DATA winoIdx<>+92(SB)/4, $27
DATA winoIdx<>+96(SB)/4, $12
DATA winoIdx<>+100(SB)/4, $28
DATA winoIdx<>+104(SB)/4, $13
DATA winoIdx<>+108(SB)/4, $29
DATA winoIdx<>+112(SB)/4, $14
DATA winoIdx<>+116(SB)/4, $30
DATA winoIdx<>+120(SB)/4, $15
DATA winoIdx<>+124(SB)/4, $31
GLOBL winoIdx<>(SB), RODATA|NOPTR, $128

// func winoInputAVX512(dst, src *float32, nc, plane, rowStride, half, xi int)
//
// The Winograd F(2×2, 3×3) input transform V = Bᵀ·d·B of 16 consecutive tiles of one tile row,
// for nc channels. src points at the tiles' first row in the laid-out input (a row holds the
// padded row's even columns, then at half its odd ones); rows are rowStride apart, channels
// plane. V[4i+j] for the 16 tiles goes to dst + (4i+j)·xi, and dst advances 32 floats a
// channel.
TEXT ·winoInputAVX512(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nc+16(FP), CX
	MOVQ plane+24(FP), R8
	SHLQ $2, R8
	MOVQ rowStride+32(FP), R9
	SHLQ $2, R9
	MOVQ half+40(FP), R10
	SHLQ $2, R10
	MOVQ xi+48(FP), R11
	SHLQ $2, R11
	TESTQ CX, CX
	JZ idone
iloop:
	MOVQ SI, AX
	VMOVUPS (AX), Z16
	VMOVUPS 4(AX), Z17
	VMOVUPS (AX)(R10*1), Z18
	VMOVUPS 4(AX)(R10*1), Z19
	VSUBPS Z17, Z16, Z0
	VADDPS Z17, Z18, Z1
	VSUBPS Z18, Z17, Z2
	VSUBPS Z19, Z18, Z3
	ADDQ R9, AX
	VMOVUPS (AX), Z16
	VMOVUPS 4(AX), Z17
	VMOVUPS (AX)(R10*1), Z18
	VMOVUPS 4(AX)(R10*1), Z19
	VSUBPS Z17, Z16, Z4
	VADDPS Z17, Z18, Z5
	VSUBPS Z18, Z17, Z6
	VSUBPS Z19, Z18, Z7
	ADDQ R9, AX
	VMOVUPS (AX), Z16
	VMOVUPS 4(AX), Z17
	VMOVUPS (AX)(R10*1), Z18
	VMOVUPS 4(AX)(R10*1), Z19
	VSUBPS Z17, Z16, Z8
	VADDPS Z17, Z18, Z9
	VSUBPS Z18, Z17, Z10
	VSUBPS Z19, Z18, Z11
	ADDQ R9, AX
	VMOVUPS (AX), Z16
	VMOVUPS 4(AX), Z17
	VMOVUPS (AX)(R10*1), Z18
	VMOVUPS 4(AX)(R10*1), Z19
	VSUBPS Z17, Z16, Z12
	VADDPS Z17, Z18, Z13
	VSUBPS Z18, Z17, Z14
	VSUBPS Z19, Z18, Z15
	MOVQ DI, BX
	VSUBPS Z8, Z0, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z9, Z1, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z10, Z2, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z11, Z3, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VADDPS Z8, Z4, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VADDPS Z9, Z5, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VADDPS Z10, Z6, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VADDPS Z11, Z7, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z4, Z8, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z5, Z9, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z6, Z10, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z7, Z11, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z12, Z4, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z13, Z5, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z14, Z6, Z20
	VMOVUPS Z20, (BX)
	ADDQ R11, BX
	VSUBPS Z15, Z7, Z20
	VMOVUPS Z20, (BX)
	ADDQ R8, SI
	ADDQ $128, DI
	DECQ CX
	JNZ iloop
idone:
	VZEROUPPER
	RET

// func winoOutputAVX512(y0, y1, m *float32, nk, ohw, ldm, xi int, bias *float32)
//
// The Winograd F(2×2, 3×3) output transform Y = Aᵀ·M·A of 16 consecutive tiles of one tile
// row, for nk output channels: M[4i+j] of the tiles at m + (4i+j)·xi, m advancing ldm floats
// a channel. The tiles' two output rows, interleaved and plus bias[k], go to y0 and y1 (32
// values each), which advance ohw floats a channel.
TEXT ·winoOutputAVX512(SB), NOSPLIT, $0-64
	MOVQ y0+0(FP), DI
	MOVQ y1+8(FP), DX
	MOVQ m+16(FP), SI
	MOVQ nk+24(FP), CX
	MOVQ ohw+32(FP), R8
	SHLQ $2, R8
	MOVQ ldm+40(FP), R9
	SHLQ $2, R9
	MOVQ xi+48(FP), R11
	SHLQ $2, R11
	MOVQ bias+56(FP), R12
	VMOVUPS winoIdx<>+0(SB), Z30
	VMOVUPS winoIdx<>+64(SB), Z31
	TESTQ CX, CX
	JZ odone
oloop:
	MOVQ SI, AX
	VMOVUPS (AX), Z0
	ADDQ R11, AX
	VMOVUPS (AX), Z1
	ADDQ R11, AX
	VMOVUPS (AX), Z2
	ADDQ R11, AX
	VMOVUPS (AX), Z3
	ADDQ R11, AX
	VMOVUPS (AX), Z4
	ADDQ R11, AX
	VMOVUPS (AX), Z5
	ADDQ R11, AX
	VMOVUPS (AX), Z6
	ADDQ R11, AX
	VMOVUPS (AX), Z7
	ADDQ R11, AX
	VMOVUPS (AX), Z8
	ADDQ R11, AX
	VMOVUPS (AX), Z9
	ADDQ R11, AX
	VMOVUPS (AX), Z10
	ADDQ R11, AX
	VMOVUPS (AX), Z11
	ADDQ R11, AX
	VMOVUPS (AX), Z12
	ADDQ R11, AX
	VMOVUPS (AX), Z13
	ADDQ R11, AX
	VMOVUPS (AX), Z14
	ADDQ R11, AX
	VMOVUPS (AX), Z15
	VADDPS Z4, Z0, Z16
	VADDPS Z8, Z16, Z16
	VSUBPS Z8, Z4, Z20
	VSUBPS Z12, Z20, Z20
	VADDPS Z5, Z1, Z17
	VADDPS Z9, Z17, Z17
	VSUBPS Z9, Z5, Z21
	VSUBPS Z13, Z21, Z21
	VADDPS Z6, Z2, Z18
	VADDPS Z10, Z18, Z18
	VSUBPS Z10, Z6, Z22
	VSUBPS Z14, Z22, Z22
	VADDPS Z7, Z3, Z19
	VADDPS Z11, Z19, Z19
	VSUBPS Z11, Z7, Z23
	VSUBPS Z15, Z23, Z23
	VBROADCASTSS (R12), Z29
	VADDPS Z17, Z16, Z24
	VADDPS Z18, Z24, Z24
	VADDPS Z29, Z24, Z24
	VSUBPS Z18, Z17, Z25
	VSUBPS Z19, Z25, Z25
	VADDPS Z29, Z25, Z25
	VADDPS Z21, Z20, Z26
	VADDPS Z22, Z26, Z26
	VADDPS Z29, Z26, Z26
	VSUBPS Z22, Z21, Z27
	VSUBPS Z23, Z27, Z27
	VADDPS Z29, Z27, Z27
	VMOVAPS Z24, Z0
	VPERMT2PS Z25, Z30, Z0
	VMOVAPS Z24, Z1
	VPERMT2PS Z25, Z31, Z1
	VMOVAPS Z26, Z2
	VPERMT2PS Z27, Z30, Z2
	VMOVAPS Z26, Z3
	VPERMT2PS Z27, Z31, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, (DX)
	VMOVUPS Z3, 64(DX)
	ADDQ R8, DI
	ADDQ R8, DX
	ADDQ R9, SI
	ADDQ $4, R12
	DECQ CX
	JNZ oloop
odone:
	VZEROUPPER
	RET
