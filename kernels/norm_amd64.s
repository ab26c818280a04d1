#include "textflag.h"

// func sumF64AVX2(x *float32, n int) float64
// The sum of x[:n] (n a positive multiple of 16), accumulated in float64: four lanes in
// each of four accumulators.
TEXT ·sumF64AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	SHRQ $4, CX
sloop:
	VCVTPS2PD 0(SI), Y0
	VCVTPS2PD 16(SI), Y1
	VCVTPS2PD 32(SI), Y2
	VCVTPS2PD 48(SI), Y3
	VADDPD Y0, Y4, Y4
	VADDPD Y1, Y5, Y5
	VADDPD Y2, Y6, Y6
	VADDPD Y3, Y7, Y7
	ADDQ $64, SI
	DECQ CX
	JNZ sloop
	VADDPD Y5, Y4, Y4
	VADDPD Y7, Y6, Y6
	VADDPD Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X1
	VADDPD X1, X4, X4
	VHADDPD X4, X4, X4
	VZEROUPPER
	MOVSD X4, ret+16(FP)
	RET

// func sqDevF64AVX2(x *float32, n int, mean float64) float64
// The sum of (x[i] − mean)² over x[:n] (n a positive multiple of 16), in float64.
TEXT ·sqDevF64AVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSD mean+16(FP), Y8
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	SHRQ $4, CX
qloop:
	VCVTPS2PD 0(SI), Y0
	VCVTPS2PD 16(SI), Y1
	VCVTPS2PD 32(SI), Y2
	VCVTPS2PD 48(SI), Y3
	VSUBPD Y8, Y0, Y0
	VSUBPD Y8, Y1, Y1
	VSUBPD Y8, Y2, Y2
	VSUBPD Y8, Y3, Y3
	VFMADD231PD Y0, Y0, Y4
	VFMADD231PD Y1, Y1, Y5
	VFMADD231PD Y2, Y2, Y6
	VFMADD231PD Y3, Y3, Y7
	ADDQ $64, SI
	DECQ CX
	JNZ qloop
	VADDPD Y5, Y4, Y4
	VADDPD Y7, Y6, Y6
	VADDPD Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X1
	VADDPD X1, X4, X4
	VHADDPD X4, X4, X4
	VZEROUPPER
	MOVSD X4, ret+24(FP)
	RET

// func normAffineAVX2(y, x *float32, n int, m, s, b float32)
// y[i] = (x[i] − m)·s + b for i < n (n a positive multiple of 8), each step rounded.
TEXT ·normAffineAVX2(SB), NOSPLIT, $0-36
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS m+24(FP), Y5
	VBROADCASTSS s+28(FP), Y6
	VBROADCASTSS b+32(FP), Y7
	SHRQ $3, CX
aloop:
	VMOVUPS (SI), Y0
	VSUBPS Y5, Y0, Y0
	VMULPS Y6, Y0, Y0
	VADDPS Y7, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ aloop
	VZEROUPPER
	RET

// func lnAffineAVX2(y, x, w, b *float32, n int, m, s float32)
// y[i] = ((x[i] − m)·s)·w[i] + b[i] for i < n (n a positive multiple of 8), each step
// rounded.
TEXT ·lnAffineAVX2(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), R8
	MOVQ b+24(FP), R9
	MOVQ n+32(FP), CX
	VBROADCASTSS m+40(FP), Y5
	VBROADCASTSS s+44(FP), Y6
	SHRQ $3, CX
lloop:
	VMOVUPS (SI), Y0
	VSUBPS Y5, Y0, Y0
	VMULPS Y6, Y0, Y0
	VMULPS (R8), Y0, Y0
	VADDPS (R9), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ lloop
	VZEROUPPER
	RET
