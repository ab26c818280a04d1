package kernels

// cpuid executes CPUID with the given leaf (eaxArg) and subleaf (ecxArg).
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// xgetbv reads XCR0, which says which register states the OS saves on context switch.
func xgetbv() (eax, edx uint32)

// cpu holds what this CPU and OS support, detected once at start-up.
var cpu = detectCPU()

// cpuFeatures reports what the GEMM kernels may use. A feature counts only when both the
// CPU has it and the OS saves the registers it needs (XCR0), as a hypervisor can hide either.
type cpuFeatures struct {
	avx2FMA bool // AVX2 and FMA3 on YMM registers
	avx512  bool // AVX-512F on ZMM registers
	f16c    bool // VCVTPH2PS (with AVX2: the half-precision weight kernels)
}

func detectCPU() cpuFeatures {
	var f cpuFeatures
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return f
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fmaBit     = 1 << 12
		osxsaveBit = 1 << 27
		avxBit     = 1 << 28
		f16cBit    = 1 << 29
	)
	if ecx1&(fmaBit|osxsaveBit|avxBit) != fmaBit|osxsaveBit|avxBit {
		return f
	}
	xcr0, _ := xgetbv()
	const (
		xmmYmmState = 1<<1 | 1<<2        // SSE and AVX state
		zmmState    = 1<<5 | 1<<6 | 1<<7 // opmask, ZMM0-15 upper halves, ZMM16-31
	)
	if xcr0&xmmYmmState != xmmYmmState {
		return f
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const (
		avx2Bit    = 1 << 5
		avx512fBit = 1 << 16
	)
	f.avx2FMA = ebx7&avx2Bit != 0
	f.f16c = f.avx2FMA && ecx1&f16cBit != 0
	f.avx512 = f.avx2FMA && ebx7&avx512fBit != 0 && xcr0&zmmState == zmmState
	return f
}
