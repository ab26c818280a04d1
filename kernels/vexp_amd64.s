// Vectorized exponentials (AVX2 + FMA) for softmax, attention and the sigmoid family.
// Hand-written; the constants are Cephes expf's, as in exp32 (elementwise.go):
// x = n·ln2 + r, e^r by a degree-6 polynomial, 2^n through the exponent bits.

#include "textflag.h"

DATA expConst<>+0(SB)/4, $0xc2aeac4f
DATA expConst<>+4(SB)/4, $0xc2aeac4f
DATA expConst<>+8(SB)/4, $0xc2aeac4f
DATA expConst<>+12(SB)/4, $0xc2aeac4f
DATA expConst<>+16(SB)/4, $0xc2aeac4f
DATA expConst<>+20(SB)/4, $0xc2aeac4f
DATA expConst<>+24(SB)/4, $0xc2aeac4f
DATA expConst<>+28(SB)/4, $0xc2aeac4f
DATA expConst<>+32(SB)/4, $0x42b00000
DATA expConst<>+36(SB)/4, $0x42b00000
DATA expConst<>+40(SB)/4, $0x42b00000
DATA expConst<>+44(SB)/4, $0x42b00000
DATA expConst<>+48(SB)/4, $0x42b00000
DATA expConst<>+52(SB)/4, $0x42b00000
DATA expConst<>+56(SB)/4, $0x42b00000
DATA expConst<>+60(SB)/4, $0x42b00000
DATA expConst<>+64(SB)/4, $0x3fb8aa3b
DATA expConst<>+68(SB)/4, $0x3fb8aa3b
DATA expConst<>+72(SB)/4, $0x3fb8aa3b
DATA expConst<>+76(SB)/4, $0x3fb8aa3b
DATA expConst<>+80(SB)/4, $0x3fb8aa3b
DATA expConst<>+84(SB)/4, $0x3fb8aa3b
DATA expConst<>+88(SB)/4, $0x3fb8aa3b
DATA expConst<>+92(SB)/4, $0x3fb8aa3b
DATA expConst<>+96(SB)/4, $0x3f000000
DATA expConst<>+100(SB)/4, $0x3f000000
DATA expConst<>+104(SB)/4, $0x3f000000
DATA expConst<>+108(SB)/4, $0x3f000000
DATA expConst<>+112(SB)/4, $0x3f000000
DATA expConst<>+116(SB)/4, $0x3f000000
DATA expConst<>+120(SB)/4, $0x3f000000
DATA expConst<>+124(SB)/4, $0x3f000000
DATA expConst<>+128(SB)/4, $0x3f318000
DATA expConst<>+132(SB)/4, $0x3f318000
DATA expConst<>+136(SB)/4, $0x3f318000
DATA expConst<>+140(SB)/4, $0x3f318000
DATA expConst<>+144(SB)/4, $0x3f318000
DATA expConst<>+148(SB)/4, $0x3f318000
DATA expConst<>+152(SB)/4, $0x3f318000
DATA expConst<>+156(SB)/4, $0x3f318000
DATA expConst<>+160(SB)/4, $0xb95e8083
DATA expConst<>+164(SB)/4, $0xb95e8083
DATA expConst<>+168(SB)/4, $0xb95e8083
DATA expConst<>+172(SB)/4, $0xb95e8083
DATA expConst<>+176(SB)/4, $0xb95e8083
DATA expConst<>+180(SB)/4, $0xb95e8083
DATA expConst<>+184(SB)/4, $0xb95e8083
DATA expConst<>+188(SB)/4, $0xb95e8083
DATA expConst<>+192(SB)/4, $0x39506967
DATA expConst<>+196(SB)/4, $0x39506967
DATA expConst<>+200(SB)/4, $0x39506967
DATA expConst<>+204(SB)/4, $0x39506967
DATA expConst<>+208(SB)/4, $0x39506967
DATA expConst<>+212(SB)/4, $0x39506967
DATA expConst<>+216(SB)/4, $0x39506967
DATA expConst<>+220(SB)/4, $0x39506967
DATA expConst<>+224(SB)/4, $0x3ab743ce
DATA expConst<>+228(SB)/4, $0x3ab743ce
DATA expConst<>+232(SB)/4, $0x3ab743ce
DATA expConst<>+236(SB)/4, $0x3ab743ce
DATA expConst<>+240(SB)/4, $0x3ab743ce
DATA expConst<>+244(SB)/4, $0x3ab743ce
DATA expConst<>+248(SB)/4, $0x3ab743ce
DATA expConst<>+252(SB)/4, $0x3ab743ce
DATA expConst<>+256(SB)/4, $0x3c088908
DATA expConst<>+260(SB)/4, $0x3c088908
DATA expConst<>+264(SB)/4, $0x3c088908
DATA expConst<>+268(SB)/4, $0x3c088908
DATA expConst<>+272(SB)/4, $0x3c088908
DATA expConst<>+276(SB)/4, $0x3c088908
DATA expConst<>+280(SB)/4, $0x3c088908
DATA expConst<>+284(SB)/4, $0x3c088908
DATA expConst<>+288(SB)/4, $0x3d2aa9c1
DATA expConst<>+292(SB)/4, $0x3d2aa9c1
DATA expConst<>+296(SB)/4, $0x3d2aa9c1
DATA expConst<>+300(SB)/4, $0x3d2aa9c1
DATA expConst<>+304(SB)/4, $0x3d2aa9c1
DATA expConst<>+308(SB)/4, $0x3d2aa9c1
DATA expConst<>+312(SB)/4, $0x3d2aa9c1
DATA expConst<>+316(SB)/4, $0x3d2aa9c1
DATA expConst<>+320(SB)/4, $0x3e2aaaaa
DATA expConst<>+324(SB)/4, $0x3e2aaaaa
DATA expConst<>+328(SB)/4, $0x3e2aaaaa
DATA expConst<>+332(SB)/4, $0x3e2aaaaa
DATA expConst<>+336(SB)/4, $0x3e2aaaaa
DATA expConst<>+340(SB)/4, $0x3e2aaaaa
DATA expConst<>+344(SB)/4, $0x3e2aaaaa
DATA expConst<>+348(SB)/4, $0x3e2aaaaa
DATA expConst<>+352(SB)/4, $0x3f000000
DATA expConst<>+356(SB)/4, $0x3f000000
DATA expConst<>+360(SB)/4, $0x3f000000
DATA expConst<>+364(SB)/4, $0x3f000000
DATA expConst<>+368(SB)/4, $0x3f000000
DATA expConst<>+372(SB)/4, $0x3f000000
DATA expConst<>+376(SB)/4, $0x3f000000
DATA expConst<>+380(SB)/4, $0x3f000000
DATA expConst<>+384(SB)/4, $0x3f800000
DATA expConst<>+388(SB)/4, $0x3f800000
DATA expConst<>+392(SB)/4, $0x3f800000
DATA expConst<>+396(SB)/4, $0x3f800000
DATA expConst<>+400(SB)/4, $0x3f800000
DATA expConst<>+404(SB)/4, $0x3f800000
DATA expConst<>+408(SB)/4, $0x3f800000
DATA expConst<>+412(SB)/4, $0x3f800000
DATA expConst<>+416(SB)/4, $127
DATA expConst<>+420(SB)/4, $127
DATA expConst<>+424(SB)/4, $127
DATA expConst<>+428(SB)/4, $127
DATA expConst<>+432(SB)/4, $127
DATA expConst<>+436(SB)/4, $127
DATA expConst<>+440(SB)/4, $127
DATA expConst<>+444(SB)/4, $127
DATA expConst<>+448(SB)/4, $0x7fffffff
DATA expConst<>+452(SB)/4, $0x7fffffff
DATA expConst<>+456(SB)/4, $0x7fffffff
DATA expConst<>+460(SB)/4, $0x7fffffff
DATA expConst<>+464(SB)/4, $0x7fffffff
DATA expConst<>+468(SB)/4, $0x7fffffff
DATA expConst<>+472(SB)/4, $0x7fffffff
DATA expConst<>+476(SB)/4, $0x7fffffff
DATA expConst<>+480(SB)/4, $0x3f3504f3
DATA expConst<>+484(SB)/4, $0x3f3504f3
DATA expConst<>+488(SB)/4, $0x3f3504f3
DATA expConst<>+492(SB)/4, $0x3f3504f3
DATA expConst<>+496(SB)/4, $0x3f3504f3
DATA expConst<>+500(SB)/4, $0x3f3504f3
DATA expConst<>+504(SB)/4, $0x3f3504f3
DATA expConst<>+508(SB)/4, $0x3f3504f3
DATA expConst<>+512(SB)/4, $0xbfa1fc4e
DATA expConst<>+516(SB)/4, $0xbfa1fc4e
DATA expConst<>+520(SB)/4, $0xbfa1fc4e
DATA expConst<>+524(SB)/4, $0xbfa1fc4e
DATA expConst<>+528(SB)/4, $0xbfa1fc4e
DATA expConst<>+532(SB)/4, $0xbfa1fc4e
DATA expConst<>+536(SB)/4, $0xbfa1fc4e
DATA expConst<>+540(SB)/4, $0xbfa1fc4e
DATA expConst<>+544(SB)/4, $0x3f8000c7
DATA expConst<>+548(SB)/4, $0x3f8000c7
DATA expConst<>+552(SB)/4, $0x3f8000c7
DATA expConst<>+556(SB)/4, $0x3f8000c7
DATA expConst<>+560(SB)/4, $0x3f8000c7
DATA expConst<>+564(SB)/4, $0x3f8000c7
DATA expConst<>+568(SB)/4, $0x3f8000c7
DATA expConst<>+572(SB)/4, $0x3f8000c7
DATA expConst<>+576(SB)/4, $0x3ebf88fb
DATA expConst<>+580(SB)/4, $0x3ebf88fb
DATA expConst<>+584(SB)/4, $0x3ebf88fb
DATA expConst<>+588(SB)/4, $0x3ebf88fb
DATA expConst<>+592(SB)/4, $0x3ebf88fb
DATA expConst<>+596(SB)/4, $0x3ebf88fb
DATA expConst<>+600(SB)/4, $0x3ebf88fb
DATA expConst<>+604(SB)/4, $0x3ebf88fb
DATA expConst<>+608(SB)/4, $0x3dc636c9
DATA expConst<>+612(SB)/4, $0x3dc636c9
DATA expConst<>+616(SB)/4, $0x3dc636c9
DATA expConst<>+620(SB)/4, $0x3dc636c9
DATA expConst<>+624(SB)/4, $0x3dc636c9
DATA expConst<>+628(SB)/4, $0x3dc636c9
DATA expConst<>+632(SB)/4, $0x3dc636c9
DATA expConst<>+636(SB)/4, $0x3dc636c9
DATA expConst<>+640(SB)/4, $0xbe3ec24c
DATA expConst<>+644(SB)/4, $0xbe3ec24c
DATA expConst<>+648(SB)/4, $0xbe3ec24c
DATA expConst<>+652(SB)/4, $0xbe3ec24c
DATA expConst<>+656(SB)/4, $0xbe3ec24c
DATA expConst<>+660(SB)/4, $0xbe3ec24c
DATA expConst<>+664(SB)/4, $0xbe3ec24c
DATA expConst<>+668(SB)/4, $0xbe3ec24c
DATA expConst<>+672(SB)/4, $0x3e8ec7cc
DATA expConst<>+676(SB)/4, $0x3e8ec7cc
DATA expConst<>+680(SB)/4, $0x3e8ec7cc
DATA expConst<>+684(SB)/4, $0x3e8ec7cc
DATA expConst<>+688(SB)/4, $0x3e8ec7cc
DATA expConst<>+692(SB)/4, $0x3e8ec7cc
DATA expConst<>+696(SB)/4, $0x3e8ec7cc
DATA expConst<>+700(SB)/4, $0x3e8ec7cc
DATA expConst<>+704(SB)/4, $0xbf914e5d
DATA expConst<>+708(SB)/4, $0xbf914e5d
DATA expConst<>+712(SB)/4, $0xbf914e5d
DATA expConst<>+716(SB)/4, $0xbf914e5d
DATA expConst<>+720(SB)/4, $0xbf914e5d
DATA expConst<>+724(SB)/4, $0xbf914e5d
DATA expConst<>+728(SB)/4, $0xbf914e5d
DATA expConst<>+732(SB)/4, $0xbf914e5d
DATA expConst<>+736(SB)/4, $0x3fbe87b0
DATA expConst<>+740(SB)/4, $0x3fbe87b0
DATA expConst<>+744(SB)/4, $0x3fbe87b0
DATA expConst<>+748(SB)/4, $0x3fbe87b0
DATA expConst<>+752(SB)/4, $0x3fbe87b0
DATA expConst<>+756(SB)/4, $0x3fbe87b0
DATA expConst<>+760(SB)/4, $0x3fbe87b0
DATA expConst<>+764(SB)/4, $0x3fbe87b0
DATA expConst<>+768(SB)/4, $0xbf527892
DATA expConst<>+772(SB)/4, $0xbf527892
DATA expConst<>+776(SB)/4, $0xbf527892
DATA expConst<>+780(SB)/4, $0xbf527892
DATA expConst<>+784(SB)/4, $0xbf527892
DATA expConst<>+788(SB)/4, $0xbf527892
DATA expConst<>+792(SB)/4, $0xbf527892
DATA expConst<>+796(SB)/4, $0xbf527892
DATA expConst<>+800(SB)/4, $0x3e2ef945
DATA expConst<>+804(SB)/4, $0x3e2ef945
DATA expConst<>+808(SB)/4, $0x3e2ef945
DATA expConst<>+812(SB)/4, $0x3e2ef945
DATA expConst<>+816(SB)/4, $0x3e2ef945
DATA expConst<>+820(SB)/4, $0x3e2ef945
DATA expConst<>+824(SB)/4, $0x3e2ef945
DATA expConst<>+828(SB)/4, $0x3e2ef945
DATA expConst<>+832(SB)/4, $0x3eaaaaab
DATA expConst<>+836(SB)/4, $0x3eaaaaab
DATA expConst<>+840(SB)/4, $0x3eaaaaab
DATA expConst<>+844(SB)/4, $0x3eaaaaab
DATA expConst<>+848(SB)/4, $0x3eaaaaab
DATA expConst<>+852(SB)/4, $0x3eaaaaab
DATA expConst<>+856(SB)/4, $0x3eaaaaab
DATA expConst<>+860(SB)/4, $0x3eaaaaab
DATA expConst<>+864(SB)/4, $0x3e088889
DATA expConst<>+868(SB)/4, $0x3e088889
DATA expConst<>+872(SB)/4, $0x3e088889
DATA expConst<>+876(SB)/4, $0x3e088889
DATA expConst<>+880(SB)/4, $0x3e088889
DATA expConst<>+884(SB)/4, $0x3e088889
DATA expConst<>+888(SB)/4, $0x3e088889
DATA expConst<>+892(SB)/4, $0x3e088889
DATA expConst<>+896(SB)/4, $0x3d800000
DATA expConst<>+900(SB)/4, $0x3d800000
DATA expConst<>+904(SB)/4, $0x3d800000
DATA expConst<>+908(SB)/4, $0x3d800000
DATA expConst<>+912(SB)/4, $0x3d800000
DATA expConst<>+916(SB)/4, $0x3d800000
DATA expConst<>+920(SB)/4, $0x3d800000
DATA expConst<>+924(SB)/4, $0x3d800000
DATA expConst<>+928(SB)/4, $0x40000000
DATA expConst<>+932(SB)/4, $0x40000000
DATA expConst<>+936(SB)/4, $0x40000000
DATA expConst<>+940(SB)/4, $0x40000000
DATA expConst<>+944(SB)/4, $0x40000000
DATA expConst<>+948(SB)/4, $0x40000000
DATA expConst<>+952(SB)/4, $0x40000000
DATA expConst<>+956(SB)/4, $0x40000000
GLOBL expConst<>(SB), RODATA|NOPTR, $960

// EXP_Y0_TO_Y3 sets Y3 = e^Y0 (clobbering Y0, Y1, Y2, Y7). Arguments below −87.3 give 0 (so
// −Inf does), NaN stays NaN. It expects the constants the prologues load into Y4, Y5,
// Y9–Y14.
#define EXP_Y0_TO_Y3 \
	VCMPPS $1, Y14, Y0, Y7; \
	VMAXPS Y0, Y14, Y0; \
	VMINPS Y0, Y13, Y0; \
	VMOVAPS Y11, Y1; \
	VFMADD231PS Y12, Y0, Y1; \
	VROUNDPS $1, Y1, Y1; \
	VFNMADD231PS Y10, Y1, Y0; \
	VFNMADD231PS Y9, Y1, Y0; \
	VMULPS Y0, Y0, Y2; \
	VMOVAPS Y4, Y3; \
	VFMADD213PS Y5, Y0, Y3; \
	VFMADD213PS expConst<>+256(SB), Y0, Y3; \
	VFMADD213PS expConst<>+288(SB), Y0, Y3; \
	VFMADD213PS expConst<>+320(SB), Y0, Y3; \
	VFMADD213PS expConst<>+352(SB), Y0, Y3; \
	VFMADD213PS Y0, Y2, Y3; \
	VADDPS expConst<>+384(SB), Y3, Y3; \
	VCVTTPS2DQ Y1, Y1; \
	VPADDD expConst<>+416(SB), Y1, Y1; \
	VPSLLD $23, Y1, Y1; \
	VMULPS Y1, Y3, Y3; \
	VANDNPS Y3, Y7, Y3

// LOAD_EXP_CONSTANTS loads the constants EXP_Y0_TO_Y3 expects into Y4, Y5, Y9–Y14.
#define LOAD_EXP_CONSTANTS \
	VMOVUPS expConst<>+0(SB), Y14; \
	VMOVUPS expConst<>+32(SB), Y13; \
	VMOVUPS expConst<>+64(SB), Y12; \
	VMOVUPS expConst<>+96(SB), Y11; \
	VMOVUPS expConst<>+128(SB), Y10; \
	VMOVUPS expConst<>+160(SB), Y9; \
	VMOVUPS expConst<>+192(SB), Y4; \
	VMOVUPS expConst<>+224(SB), Y5

// func expShiftSumAVX2(x *float32, n int, shift float32) float32
// x[i] = e^(x[i]−shift) for i < n (n a multiple of 8); returns the sum of the results.
TEXT ·expShiftSumAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y15
	LOAD_EXP_CONSTANTS
	VXORPS Y8, Y8, Y8
	SHRQ $3, CX
	JZ done
loop:
	VMOVUPS (SI), Y0
	VSUBPS Y15, Y0, Y0
	EXP_Y0_TO_Y3
	VMOVUPS Y3, (SI)
	VADDPS Y3, Y8, Y8
	ADDQ $32, SI
	DECQ CX
	JNZ loop
done:
	VEXTRACTF128 $1, Y8, X0
	VADDPS X0, X8, X8
	VHADDPS X8, X8, X8
	VHADDPS X8, X8, X8
	VZEROUPPER
	MOVSS X8, ret+24(FP)
	RET

// func sigmoidGateAVX2(y, x *float32, n int, alpha, cubic float32, mulx bool)
// s = σ(alpha·(x + cubic·x³)); y[i] = mulx ? x·s : s, for i < n (n a multiple of 8).
TEXT ·sigmoidGateAVX2(SB), NOSPLIT, $0-33
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS alpha+24(FP), Y15
	VBROADCASTSS cubic+28(FP), Y8
	MOVBLZX mulx+32(FP), DX
	LOAD_EXP_CONSTANTS
	SHRQ $3, CX
	JZ sdone
sloop:
	VMOVUPS (SI), Y6
	VMULPS Y6, Y6, Y0
	VFMADD213PS expConst<>+384(SB), Y8, Y0 // 1 + cubic·x²
	VMULPS Y6, Y0, Y0
	VMULPS Y15, Y0, Y0            // u = alpha·x·(1 + cubic·x²)
	VXORPS Y1, Y1, Y1
	VSUBPS Y0, Y1, Y0             // −u
	EXP_Y0_TO_Y3
	VADDPS expConst<>+384(SB), Y3, Y3
	VMOVUPS expConst<>+384(SB), Y0
	VDIVPS Y3, Y0, Y3             // σ(u) = 1/(1+e^−u)
	TESTQ DX, DX
	JZ store
	VMULPS Y6, Y3, Y3
store:
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ sloop
sdone:
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
// The maximum of x[:n], n a positive multiple of 8.
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	ADDQ $32, SI
	SHRQ $3, CX
	DECQ CX
	JZ reduce
mloop:
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	DECQ CX
	JNZ mloop
reduce:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET

// func geluErfAVX2(y, x *float32, n int)
// y = x·Φ(x) with Φ(x) = erfc(−x/√2)/2, for i < n (n a multiple of 8). erfc uses the
// Chebyshev fit of Numerical Recipes (erfcc, fractional error < 1.2e-7):
// erfc(z) = t·e^(−z² + P(t)), t = 1/(1 + z/2), z = |x|/√2; Φ = 1 − erfc/2 for x > 0.
TEXT ·geluErfAVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	LOAD_EXP_CONSTANTS
	SHRQ $3, CX
	JZ gdone
gloop:
	VMOVUPS (SI), Y6
	VANDPS expConst<>+448(SB), Y6, Y15
	VMULPS expConst<>+480(SB), Y15, Y15 // z
	VMOVAPS Y15, Y0
	VFMADD213PS expConst<>+384(SB), Y11, Y0     // 1 + z/2
	VMOVUPS expConst<>+384(SB), Y8
	VDIVPS Y0, Y8, Y8              // t
	VMOVUPS expConst<>+800(SB), Y0
	VFMADD213PS expConst<>+768(SB), Y8, Y0
	VFMADD213PS expConst<>+736(SB), Y8, Y0
	VFMADD213PS expConst<>+704(SB), Y8, Y0
	VFMADD213PS expConst<>+672(SB), Y8, Y0
	VFMADD213PS expConst<>+640(SB), Y8, Y0
	VFMADD213PS expConst<>+608(SB), Y8, Y0
	VFMADD213PS expConst<>+576(SB), Y8, Y0
	VFMADD213PS expConst<>+544(SB), Y8, Y0
	VFMADD213PS expConst<>+512(SB), Y8, Y0
	VFNMADD231PS Y15, Y15, Y0      // P(t) − z²
	EXP_Y0_TO_Y3
	VMULPS Y8, Y3, Y3
	VMULPS Y11, Y3, Y3             // erfc(z)/2
	VMOVUPS expConst<>+384(SB), Y1
	VSUBPS Y3, Y1, Y1              // 1 − erfc(z)/2
	VXORPS Y15, Y15, Y15
	VCMPPS $1, Y6, Y15, Y0         // 0 < x
	VBLENDVPS Y0, Y1, Y3, Y3
	VMULPS Y6, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ gloop
gdone:
	VZEROUPPER
	RET

// func tanhAVX2(y, x *float32, n int)
// y = tanh(x) = 2σ(2x) − 1 for i < n (n a multiple of 8); for |x| < 1/16, where that loses
// relative precision, the series x·(1 − x²/3 + 2x⁴/15) instead (error below 17x⁷/315).
TEXT ·tanhAVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	LOAD_EXP_CONSTANTS
	SHRQ $3, CX
	JZ tdone
tloop:
	VMOVUPS (SI), Y6
	VMULPS expConst<>+928(SB), Y6, Y0
	VXORPS Y1, Y1, Y1
	VSUBPS Y0, Y1, Y0       // −2x
	EXP_Y0_TO_Y3
	VADDPS expConst<>+384(SB), Y3, Y3
	VMOVUPS expConst<>+928(SB), Y0
	VDIVPS Y3, Y0, Y3       // 2σ(2x)
	VSUBPS expConst<>+384(SB), Y3, Y3
	VMULPS Y6, Y6, Y1       // x²
	VMOVUPS expConst<>+864(SB), Y2
	VFNMADD213PS expConst<>+832(SB), Y1, Y2 // 1/3 − x²·2/15
	VFNMADD213PS expConst<>+384(SB), Y1, Y2        // 1 − x²·(…)
	VMULPS Y6, Y2, Y2
	VANDPS expConst<>+448(SB), Y6, Y1
	VCMPPS $1, expConst<>+896(SB), Y1, Y0   // |x| < 1/16
	VBLENDVPS Y0, Y2, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ tloop
tdone:
	VZEROUPPER
	RET

// func scaleAVX2(x *float32, n int, s float32)
// x[i] *= s for i < n (n a multiple of 8).
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1
	SHRQ $3, CX
	JZ cdone
cloop:
	VMULPS (SI), Y1, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ cloop
cdone:
	VZEROUPPER
	RET

// func axpyAVX2(y, x *float32, n int, a float32)
// y[i] += a·x[i] for i < n (n a multiple of 8).
TEXT ·axpyAVX2(SB), NOSPLIT, $0-28
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y2
	SHRQ $3, CX
	JZ adone
	TESTQ $1, CX
	JZ apairs
	VMOVUPS (DI), Y0
	VFMADD231PS (SI), Y2, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JZ adone
apairs:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VFMADD231PS (SI), Y2, Y0
	VFMADD231PS 32(SI), Y2, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JNZ apairs
adone:
	VZEROUPPER
	RET

// func expAVX2(y, x *float32, n int)
// y = e^x for i < n (n a multiple of 8). Arguments above 88 are clamped there: the caller
// takes another path for spans that reach beyond.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	LOAD_EXP_CONSTANTS
	SHRQ $3, CX
	JZ edone
eloop:
	VMOVUPS (SI), Y0
	EXP_Y0_TO_Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ eloop
edone:
	VZEROUPPER
	RET

// func expColumnsAVX2(s *float32, rows, width int, shift, sum *float32)
// For r < rows and c < width (width a positive multiple of 8): s[r·width+c] =
// e^(s[r·width+c] − shift[c]), and sum[c] += the results of column c (added row by row).
TEXT ·expColumnsAVX2(SB), NOSPLIT, $0-40
	MOVQ s+0(FP), SI
	MOVQ rows+8(FP), DX
	MOVQ width+16(FP), R8
	MOVQ shift+24(FP), R9
	MOVQ sum+32(FP), R10
	VMOVUPS expConst<>+0(SB), Y14
	VMOVUPS expConst<>+32(SB), Y13
	VMOVUPS expConst<>+64(SB), Y12
	VMOVUPS expConst<>+96(SB), Y11
	VMOVUPS expConst<>+128(SB), Y10
	VMOVUPS expConst<>+160(SB), Y9
	VMOVUPS expConst<>+192(SB), Y4
	VMOVUPS expConst<>+224(SB), Y5
	MOVQ R8, R11
	SHLQ $2, R11
	SHRQ $3, R8
	TESTQ DX, DX
	JZ cdone
ccol:
	VMOVUPS (R9), Y15
	VMOVUPS (R10), Y8
	MOVQ SI, DI
	MOVQ DX, CX
crow:
	VMOVUPS (DI), Y0
	VSUBPS Y15, Y0, Y0
	EXP_Y0_TO_Y3
	VMOVUPS Y3, (DI)
	VADDPS Y3, Y8, Y8
	ADDQ R11, DI
	DECQ CX
	JNZ crow
	VMOVUPS Y8, (R10)
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R10
	DECQ R8
	JNZ ccol
cdone:
	VZEROUPPER
	RET

// func maxColumnsAVX2(s *float32, rows, width int, m *float32)
// m[c] = max(m[c], s[r·width+c] for r < rows), for c < width (a positive multiple of 8).
TEXT ·maxColumnsAVX2(SB), NOSPLIT, $0-32
	MOVQ s+0(FP), SI
	MOVQ rows+8(FP), DX
	MOVQ width+16(FP), R8
	MOVQ m+24(FP), R9
	MOVQ R8, R11
	SHLQ $2, R11
	SHRQ $3, R8
	TESTQ DX, DX
	JZ xdone
xcol:
	VMOVUPS (R9), Y0
	MOVQ SI, DI
	MOVQ DX, CX
xrow:
	VMAXPS (DI), Y0, Y0
	ADDQ R11, DI
	DECQ CX
	JNZ xrow
	VMOVUPS Y0, (R9)
	ADDQ $32, SI
	ADDQ $32, R9
	DECQ R8
	JNZ xcol
xdone:
	VZEROUPPER
	RET

// EXP_Z0_TO_Z3 is EXP_Y0_TO_Y3 on ZMM registers: Z3 = e^Z0 (clobbering Z0–Z2 and K1), with
// the constants expColumnsAVX512 loads into Z4, Z5, Z9–Z14, Z16–Z21.
#define EXP_Z0_TO_Z3 \
	VCMPPS $5, Z14, Z0, K1; \
	VMAXPS Z0, Z14, Z0; \
	VMINPS Z0, Z13, Z0; \
	VMOVAPS Z11, Z1; \
	VFMADD231PS Z12, Z0, Z1; \
	VRNDSCALEPS $1, Z1, Z1; \
	VFNMADD231PS Z10, Z1, Z0; \
	VFNMADD231PS Z9, Z1, Z0; \
	VMULPS Z0, Z0, Z2; \
	VMOVAPS Z4, Z3; \
	VFMADD213PS Z5, Z0, Z3; \
	VFMADD213PS Z16, Z0, Z3; \
	VFMADD213PS Z17, Z0, Z3; \
	VFMADD213PS Z18, Z0, Z3; \
	VFMADD213PS Z19, Z0, Z3; \
	VFMADD213PS Z0, Z2, Z3; \
	VADDPS Z20, Z3, Z3; \
	VCVTTPS2DQ Z1, Z1; \
	VPADDD Z21, Z1, Z1; \
	VPSLLD $23, Z1, Z1; \
	VMULPS Z1, Z3, Z3; \
	VMOVAPS.Z Z3, K1, Z3

// LOAD_EXP_CONSTANTS_Z loads the constants EXP_Z0_TO_Z3 reads (Z4, Z5, Z9–Z14, Z16–Z21).
#define LOAD_EXP_CONSTANTS_Z \
	VBROADCASTSS expConst<>+0(SB), Z14; \
	VBROADCASTSS expConst<>+32(SB), Z13; \
	VBROADCASTSS expConst<>+64(SB), Z12; \
	VBROADCASTSS expConst<>+96(SB), Z11; \
	VBROADCASTSS expConst<>+128(SB), Z10; \
	VBROADCASTSS expConst<>+160(SB), Z9; \
	VBROADCASTSS expConst<>+192(SB), Z4; \
	VBROADCASTSS expConst<>+224(SB), Z5; \
	VBROADCASTSS expConst<>+256(SB), Z16; \
	VBROADCASTSS expConst<>+288(SB), Z17; \
	VBROADCASTSS expConst<>+320(SB), Z18; \
	VBROADCASTSS expConst<>+352(SB), Z19; \
	VBROADCASTSS expConst<>+384(SB), Z20; \
	VPBROADCASTD expConst<>+416(SB), Z21

// func expColumnsAVX512(s *float32, rows, width int, shift, sum *float32)
// expColumnsAVX2 sixteen columns at a time (width a positive multiple of 16).
TEXT ·expColumnsAVX512(SB), NOSPLIT, $0-40
	MOVQ s+0(FP), SI
	MOVQ rows+8(FP), DX
	MOVQ width+16(FP), R8
	MOVQ shift+24(FP), R9
	MOVQ sum+32(FP), R10
	LOAD_EXP_CONSTANTS_Z
	MOVQ R8, R11
	SHLQ $2, R11
	SHRQ $4, R8
	TESTQ DX, DX
	JZ zdone
zcol:
	VMOVUPS (R9), Z15
	VMOVUPS (R10), Z8
	MOVQ SI, DI
	MOVQ DX, CX
zrow:
	VMOVUPS (DI), Z0
	VSUBPS Z15, Z0, Z0
	EXP_Z0_TO_Z3
	VMOVUPS Z3, (DI)
	VADDPS Z3, Z8, Z8
	ADDQ R11, DI
	DECQ CX
	JNZ zrow
	VMOVUPS Z8, (R10)
	ADDQ $64, SI
	ADDQ $64, R9
	ADDQ $64, R10
	DECQ R8
	JNZ zcol
zdone:
	VZEROUPPER
	RET

// func geluErfAVX512(y, x *float32, n int)
// geluErfAVX2 sixteen at a time (n a multiple of 16), with the same operations in the same
// order: the results are the same, bit for bit.
TEXT ·geluErfAVX512(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	LOAD_EXP_CONSTANTS_Z
	VPBROADCASTD expConst<>+448(SB), Z22
	VBROADCASTSS expConst<>+480(SB), Z23
	VBROADCASTSS expConst<>+800(SB), Z24
	VBROADCASTSS expConst<>+768(SB), Z25
	VBROADCASTSS expConst<>+736(SB), Z26
	VBROADCASTSS expConst<>+704(SB), Z27
	VBROADCASTSS expConst<>+672(SB), Z28
	VBROADCASTSS expConst<>+640(SB), Z29
	VBROADCASTSS expConst<>+608(SB), Z30
	VBROADCASTSS expConst<>+576(SB), Z31
	VBROADCASTSS expConst<>+544(SB), Z7
	SHRQ $4, CX
	JZ zgdone
zgloop:
	VMOVUPS (SI), Z6
	VPANDD Z22, Z6, Z15
	VMULPS Z23, Z15, Z15         // z
	VMOVAPS Z15, Z0
	VFMADD213PS Z20, Z11, Z0     // 1 + z/2
	VDIVPS Z0, Z20, Z8           // t
	VMOVAPS Z24, Z0
	VFMADD213PS Z25, Z8, Z0
	VFMADD213PS Z26, Z8, Z0
	VFMADD213PS Z27, Z8, Z0
	VFMADD213PS Z28, Z8, Z0
	VFMADD213PS Z29, Z8, Z0
	VFMADD213PS Z30, Z8, Z0
	VFMADD213PS Z31, Z8, Z0
	VFMADD213PS Z7, Z8, Z0
	VFMADD213PS.BCST expConst<>+512(SB), Z8, Z0
	VFNMADD231PS Z15, Z15, Z0    // P(t) − z²
	EXP_Z0_TO_Z3
	VMULPS Z8, Z3, Z3
	VMULPS Z11, Z3, Z3           // erfc(z)/2
	VSUBPS Z3, Z20, Z1           // 1 − erfc(z)/2
	VXORPS Z15, Z15, Z15
	VCMPPS $1, Z6, Z15, K2       // 0 < x
	VMOVAPS Z1, K2, Z3
	VMULPS Z6, Z3, Z3
	VMOVUPS Z3, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ zgloop
zgdone:
	VZEROUPPER
	RET

// func sigmoidGateAVX512(y, x *float32, n int, alpha, cubic float32, mulx bool)
// sigmoidGateAVX2 sixteen at a time (n a multiple of 16), with the same operations in the
// same order: the results are the same, bit for bit.
TEXT ·sigmoidGateAVX512(SB), NOSPLIT, $0-33
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS alpha+24(FP), Z15
	VBROADCASTSS cubic+28(FP), Z8
	MOVBLZX mulx+32(FP), DX
	LOAD_EXP_CONSTANTS_Z
	VXORPS Z22, Z22, Z22
	SHRQ $4, CX
	JZ zsdone
zsloop:
	VMOVUPS (SI), Z6
	VMULPS Z6, Z6, Z0
	VFMADD213PS Z20, Z8, Z0      // 1 + cubic·x²
	VMULPS Z6, Z0, Z0
	VMULPS Z15, Z0, Z0           // u = alpha·x·(1 + cubic·x²)
	VSUBPS Z0, Z22, Z0           // −u
	EXP_Z0_TO_Z3
	VADDPS Z20, Z3, Z3
	VDIVPS Z3, Z20, Z3           // σ(u) = 1/(1+e^−u)
	TESTQ DX, DX
	JZ zsstore
	VMULPS Z6, Z3, Z3
zsstore:
	VMOVUPS Z3, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ zsloop
zsdone:
	VZEROUPPER
	RET
