// A CPU emulator of the small part of CUDA that rfc's kernels use, so that the tests can run
// a generated model.cu with g++ on machines without a GPU. Each CUDA thread of a block is a
// fiber with its own stack; __syncthreads() returns to a scheduler that runs the
// block's fibers round-robin, so that every fiber reaches the barrier before any goes past
// it. Blocks run one after the other, which makes __shared__ (a static here) per block.
#ifndef RFC_EMU_H
#define RFC_EMU_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <functional>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
#define __restrict__ __restrict

struct dim3 {
  unsigned x, y, z;
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;

inline float __uint_as_float(unsigned u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
// Volatile stores keep the compiler from contracting these into fused operations.
inline float __fmul_rn(float a, float b) {
  volatile float r = a * b;
  return r;
}
inline float __fadd_rn(float a, float b) {
  volatile float r = a + b;
  return r;
}

struct rfc_half {
  uint16_t bits;
};
inline float rfc_half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    exp = 113;
    while (!(man & 0x400)) {
      man <<= 1;
      exp--;
    }
    bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}
inline float rfc_ld(const rfc_half* p, int i) { return rfc_half_to_float(p[i].bits); }

namespace emu {

// A fiber switch: glibc's swapcontext also saves the signal mask, a system call each time,
// which dominates a run; on x86-64 a few instructions that swap the callee-saved registers
// and the stack pointer do.
#if defined(__x86_64__)
extern "C" void rfc_emu_switch(void** save_sp, void* load_sp);
asm(R"(
.text
.globl rfc_emu_switch
.type rfc_emu_switch, @function
rfc_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size rfc_emu_switch, .-rfc_emu_switch
)");
struct Context {
  void* sp;
};
#else
struct Context {
  ucontext_t uc;
};
#endif

struct Fiber {
  Context ctx;
  std::vector<char> stack;
  bool done;
};

static Context scheduler;
static std::vector<Fiber> fibers;
static std::function<void()> body;
static unsigned current;

static void to(Context* from, Context* dst) {
#if defined(__x86_64__)
  rfc_emu_switch(&from->sp, dst->sp);
#else
  swapcontext(&from->uc, &dst->uc);
#endif
}

static void entry() {
  body();
  fibers[current].done = true;
  to(&fibers[current].ctx, &scheduler);  // never resumed
  abort();
}

static void start(Fiber& f) {
  f.done = false;
#if defined(__x86_64__)
  // The stack as rfc_emu_switch leaves it: six saved registers, then entry as the return
  // address, placed so that entry starts with the stack aligned as after a call.
  uintptr_t top = ((uintptr_t)(f.stack.data() + f.stack.size())) & ~(uintptr_t)15;
  void** sp = (void**)(top - 16);
  *sp = (void*)entry;
  for (int r = 0; r < 6; ++r) *--sp = 0;
  f.ctx.sp = sp;
#else
  getcontext(&f.ctx.uc);
  f.ctx.uc.uc_stack.ss_sp = f.stack.data();
  f.ctx.uc.uc_stack.ss_size = f.stack.size();
  f.ctx.uc.uc_link = 0;
  makecontext(&f.ctx.uc, entry, 0);
#endif
}

inline void sync() { to(&fibers[current].ctx, &scheduler); }

// launch runs fn as a grid of gx·gy·gz blocks of bx threads.
inline void launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, std::function<void()> fn) {
  body = fn;
  gridDim = dim3{gx, gy, gz};
  blockDim = dim3{bx, 1, 1};
  if (fibers.size() < bx) fibers.resize(bx);
  for (unsigned t = 0; t < bx; ++t) fibers[t].stack.resize(256 << 10);
  for (unsigned z = 0; z < gz; ++z)
    for (unsigned y = 0; y < gy; ++y)
      for (unsigned x = 0; x < gx; ++x) {
        blockIdx = dim3{x, y, z};
        for (unsigned t = 0; t < bx; ++t) start(fibers[t]);
        unsigned alive = bx;
        while (alive > 0) {
          for (unsigned t = 0; t < bx; ++t) {
            if (fibers[t].done) continue;
            current = t;
            threadIdx = dim3{t, 0, 0};
            to(&scheduler, &fibers[t].ctx);
            if (fibers[t].done) alive--;
          }
        }
      }
}

}  // namespace emu

#define __syncthreads() emu::sync()

#endif
