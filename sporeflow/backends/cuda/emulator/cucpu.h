// cucpu.h: runs the CUDA C that the sporeflow CUDA backend generates on the CPU (CI has no GPU).
//
// Design (see reference/backend-derisk.md 2c): blocks of a launch are taken from an atomic
// counter by a few OS threads; the CUDA threads of a block are fibres on that OS thread,
// switched only at barriers (__syncthreads, and the warp barriers inside __shfl_*_sync). A
// kernel without barriers runs its threads as a plain loop. Static __shared__ memory is
// `static thread_local`: one worker runs one block at a time, so it is per block. If a block
// can make no progress (a divergent __syncthreads, a thread that exits while others wait) the
// launch fails with an error instead of hanging. Fibres run in thread order 0..n-1 or in
// reverse (order = 1): running every kernel both ways catches many missing barriers.
// The fibre switch is 20 lines of x86-64 assembly (ucontext's swapcontext makes a syscall per
// switch, 20x slower); other architectures use ucontext.
#pragma once
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct uint3 {
  unsigned x, y, z;
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static thread_local

namespace cucpu {
thread_local uint3 t_thread, t_block;
thread_local dim3 t_bdim, t_gdim;
}  // namespace cucpu
#define threadIdx (cucpu::t_thread)
#define blockIdx (cucpu::t_block)
#define blockDim (cucpu::t_bdim)
#define gridDim (cucpu::t_gdim)

// ---- bit casts and the float built-ins the generator uses ---------------------------------
template <class To, class From>
inline To cucpu_bits(From v) {
  To r;
  std::memcpy(&r, &v, sizeof(To));
  return r;
}
inline float __int_as_float(int v) { return cucpu_bits<float>(v); }
inline float __uint_as_float(unsigned v) { return cucpu_bits<float>(v); }
inline int __float_as_int(float v) { return cucpu_bits<int>(v); }
inline unsigned __float_as_uint(float v) { return cucpu_bits<unsigned>(v); }
inline double __longlong_as_double(long long v) { return cucpu_bits<double>(v); }
inline long long __double_as_longlong(double v) { return cucpu_bits<long long>(v); }
using std::ceil; using std::cos; using std::erf; using std::exp; using std::fabs; using std::floor;
using std::log; using std::pow; using std::rint; using std::sin; using std::sqrt; using std::tanh;

// ---- atomics: blocks run in parallel on several OS threads ---------------------------------
template <class T>
inline T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}

namespace cucpu {
// ---- fibres ---------------------------------------------------------------------------------
enum State : int { RUNNABLE, AT_BLOCK, AT_WARP, DONE };
struct Fiber {
  void* sp = nullptr;
  State state = RUNNABLE;
#if !defined(__x86_64__)
  ucontext_t ctx;
#endif
};
struct Block;
thread_local Block* t_cur = nullptr;
constexpr size_t STACK = 64 * 1024;

struct Block {
  std::vector<Fiber> fibers;
  std::vector<char> stacks;
  std::vector<unsigned long long> slots;  // warp shuffle exchange, one per thread
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  int cur = 0;
  void* sched_sp = nullptr;
#if !defined(__x86_64__)
  ucontext_t sched_ctx;
#endif
};
}  // namespace cucpu

#if defined(__x86_64__)
// cucpu_switch(save, load): push callee-saved registers, MXCSR and the x87 control word, store
// the stack pointer in *save, continue on the stack `load` (the same frame layout).
extern "C" void cucpu_switch(void** save, void* load);
extern "C" void cucpu_trampoline();
asm(R"(
.text
.p2align 4
.type cucpu_switch,@function
cucpu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr 8(%rsp)
  fldcw (%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size cucpu_switch, .-cucpu_switch
.p2align 4
.type cucpu_trampoline,@function
cucpu_trampoline:
  movq %r12, %rdi
  callq *%r13
  ud2
.size cucpu_trampoline, .-cucpu_trampoline
)");
#endif

namespace cucpu {
inline void fiber_entry(void* p) {
  Block* b = static_cast<Block*>(p);
  b->body(b->arg);
  b->fibers[b->cur].state = DONE;
#if defined(__x86_64__)
  void* dead;
  cucpu_switch(&dead, b->sched_sp);
#else
  swapcontext(&b->fibers[b->cur].ctx, &b->sched_ctx);
#endif
  std::abort();  // a finished fibre is never resumed
}

#if !defined(__x86_64__)
inline void fiber_entry_uc(unsigned lo, unsigned hi) {
  fiber_entry(reinterpret_cast<void*>((uintptr_t(hi) << 32) | lo));
}
#endif

inline void yield(State s) {
  Block* b = t_cur;
  Fiber& f = b->fibers[b->cur];
  f.state = s;
#if defined(__x86_64__)
  cucpu_switch(&f.sp, b->sched_sp);
#else
  swapcontext(&f.ctx, &b->sched_ctx);
#endif
}

inline void resume(Block* b, int k) {
  b->cur = k;
  unsigned bx = t_bdim.x, by = t_bdim.y;
  t_thread = uint3{unsigned(k) % bx, (unsigned(k) / bx) % by, unsigned(k) / (bx * by)};
  b->fibers[k].state = RUNNABLE;
#if defined(__x86_64__)
  cucpu_switch(&b->sched_sp, b->fibers[k].sp);
#else
  swapcontext(&b->sched_ctx, &b->fibers[k].ctx);
#endif
}

inline void start_fiber(Block* b, int k) {
  char* top = b->stacks.data() + (size_t(k) + 1) * STACK;
#if defined(__x86_64__)
  uintptr_t t = reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15);
  void** s = reinterpret_cast<void**>(t);
  s[-1] = reinterpret_cast<void*>(&cucpu_trampoline);   // return address of cucpu_switch
  s[-2] = nullptr;                                     // rbp
  s[-3] = nullptr;                                     // rbx
  s[-4] = b;                                           // r12: the argument
  s[-5] = reinterpret_cast<void*>(&fiber_entry);       // r13: the function
  s[-6] = nullptr;                                     // r14
  s[-7] = nullptr;                                     // r15
  unsigned* cw = reinterpret_cast<unsigned*>(&s[-9]);
  cw[0] = 0x037F;                                      // x87 control word (default)
  cw[1] = 0;
  cw[2] = 0x1F80;                                      // MXCSR (default)
  cw[3] = 0;
  b->fibers[k].sp = &s[-9];
#else
  Fiber& f = b->fibers[k];
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = top - STACK;
  f.ctx.uc_stack.ss_size = STACK;
  f.ctx.uc_link = nullptr;
  uintptr_t p = reinterpret_cast<uintptr_t>(b);
  makecontext(&f.ctx, (void (*)())fiber_entry_uc, 2, unsigned(p), unsigned(p >> 32));
#endif
}

// Runs one block with fibres; returns false on a deadlock (message printed).
inline bool run_block_fibres(Block* b, int n, int order) {
  b->fibers.assign(n, Fiber{});
  if (b->stacks.size() < size_t(n) * STACK) b->stacks.resize(size_t(n) * STACK);
  b->slots.assign(n, 0);
  for (int k = 0; k < n; ++k) start_fiber(b, k);
  t_cur = b;
  int live = n;
  while (live > 0) {
    bool progress = false;
    for (int i = 0; i < n; ++i) {
      int k = order ? n - 1 - i : i;
      if (b->fibers[k].state == RUNNABLE) {
        resume(b, k);
        progress = true;
        if (b->fibers[k].state == DONE) --live;
      }
    }
    // warp barriers: released when every thread of the warp has arrived
    for (int w = 0; w < n; w += 32) {
      int e = w + 32 < n ? w + 32 : n;
      bool all = true;
      for (int k = w; k < e; ++k) all = all && b->fibers[k].state == AT_WARP;
      if (all) {
        for (int k = w; k < e; ++k) b->fibers[k].state = RUNNABLE;
        progress = true;
      }
    }
    int at_block = 0;
    for (int k = 0; k < n; ++k) at_block += b->fibers[k].state == AT_BLOCK;
    if (at_block == n) {
      for (int k = 0; k < n; ++k) b->fibers[k].state = RUNNABLE;
      progress = true;
    }
    if (!progress && live > 0) {
      std::fprintf(stderr, "cucpu: deadlock in block (%u,%u,%u): %d of %d threads wait at __syncthreads, "
                   "%d exited (divergent __syncthreads or shuffle)\n", t_block.x, t_block.y, t_block.z,
                   at_block, n, n - live);
      t_cur = nullptr;
      return false;
    }
  }
  t_cur = nullptr;
  return true;
}
}  // namespace cucpu

inline void __syncthreads() {
  if (cucpu::t_cur == nullptr) {
    std::fprintf(stderr, "cucpu: __syncthreads in a kernel launched without fibres\n");
    std::abort();
  }
  cucpu::yield(cucpu::AT_BLOCK);
}
inline void __syncwarp(unsigned = 0xffffffffu) { cucpu::yield(cucpu::AT_WARP); }

namespace cucpu {
inline unsigned lin_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
template <class T, class F>
inline T shuffle(T v, F src_lane) {
  static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
  Block* b = t_cur;
  unsigned me = lin_tid();
  unsigned long long s = 0;
  std::memcpy(&s, &v, sizeof(T));
  b->slots[me] = s;
  yield(AT_WARP);  // everyone has written
  unsigned base = me & ~31u, lane = me & 31u;
  unsigned src = src_lane(lane);
  T r = v;
  if (src < 32 && base + src < b->slots.size()) std::memcpy(&r, &b->slots[base + src], sizeof(T));
  yield(AT_WARP);  // everyone has read
  return r;
}
}  // namespace cucpu

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int mask, int = 32) {
  return cucpu::shuffle(v, [&](unsigned lane) { return lane ^ unsigned(mask); });
}
template <class T>
inline T __shfl_down_sync(unsigned, T v, unsigned d, int = 32) {
  return cucpu::shuffle(v, [&](unsigned lane) { return lane + d < 32 ? lane + d : lane; });
}
template <class T>
inline T __shfl_sync(unsigned, T v, int src, int = 32) {
  return cucpu::shuffle(v, [&](unsigned) { return unsigned(src) & 31u; });
}

namespace cucpu {
// ---- launches -------------------------------------------------------------------------------
struct Launch {
  void (*body)(void*);
  void* arg;
  dim3 grid, block;
  bool sync;
  int order;
  std::atomic<long long> next{0};
  std::atomic<int> failed{0};
};

inline void worker(Launch* L) {
  t_gdim = L->grid;
  t_bdim = L->block;
  Block blk;
  blk.body = L->body;
  blk.arg = L->arg;
  long long nblocks = (long long)L->grid.x * L->grid.y * L->grid.z;
  int nthreads = int(L->block.x * L->block.y * L->block.z);
  for (;;) {
    long long i = L->next.fetch_add(1);
    if (i >= nblocks || L->failed.load()) break;
    long long j = L->order ? nblocks - 1 - i : i;
    t_block = uint3{unsigned(j % L->grid.x), unsigned((j / L->grid.x) % L->grid.y),
                    unsigned(j / ((long long)L->grid.x * L->grid.y))};
    if (L->sync) {
      if (!run_block_fibres(&blk, nthreads, L->order)) L->failed.store(1);
    } else {
      for (int q = 0; q < nthreads; ++q) {
        int k = L->order ? nthreads - 1 - q : q;
        t_thread = uint3{unsigned(k) % L->block.x, (unsigned(k) / L->block.x) % L->block.y,
                         unsigned(k) / (L->block.x * L->block.y)};
        L->body(L->arg);
      }
    }
  }
}

// grid/block: 3 unsigned each; returns 0 on success, 1 when a block deadlocked.
inline int launch(void (*body)(void*), void* arg, const unsigned* g, const unsigned* b, bool sync, int order,
                  int nworkers) {
  Launch L;
  L.body = body;
  L.arg = arg;
  L.grid = dim3{g[0], g[1], g[2]};
  L.block = dim3{b[0], b[1], b[2]};
  L.sync = sync;
  L.order = order;
  long long nblocks = (long long)g[0] * g[1] * g[2];
  int nw = int(nworkers < nblocks ? nworkers : nblocks);
  if (nw <= 1) {
    worker(&L);
  } else {
    std::vector<std::thread> ts;
    for (int w = 0; w < nw; ++w) ts.emplace_back(worker, &L);
    for (auto& t : ts) t.join();
  }
  return L.failed.load();
}
}  // namespace cucpu

// One exported entry per kernel (the generator writes these): the arguments are an array of
// pointers to the kernel's parameters, as cuLaunchKernel takes them.
#define CUCPU_EXPORT(name, sync, call)                                                         \
  extern "C" int cucpu_launch_##name(const unsigned* g, const unsigned* b, void** a, int order, \
                                     int nworkers) {                                           \
    return cucpu::launch([](void* p) { void** a = static_cast<void**>(p); call; }, a, g, b, sync, order, \
                         nworkers);                                                            \
  }
