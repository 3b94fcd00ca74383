#include "core/cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace seek {

Isa cpu_max_isa() {
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi"))
      return Isa::Avx512;  // (Cooper Lake, the one BF16 CPU without VBMI, runs the AVX2 tier)
    // Every AVX2+FMA CPU also has F16C (clang's builtin cannot query it by name).
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return Isa::Avx2;
    return Isa::Scalar;
  }();
  return best;
}

static std::atomic<int> g_isa{-1};

Isa cpu_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v >= 0) return Isa(v);
  Isa isa = cpu_max_isa();
  if (const char* env = std::getenv("SEEK_ISA")) {
    Isa want = isa;
    if (!std::strcmp(env, "scalar")) want = Isa::Scalar;
    else if (!std::strcmp(env, "avx2")) want = Isa::Avx2;
    else if (!std::strcmp(env, "avx512")) want = Isa::Avx512;
    if (int(want) < int(isa)) isa = want;
  }
  g_isa.store(int(isa));
  return isa;
}

void set_cpu_isa(Isa isa) {
  if (int(isa) > int(cpu_max_isa())) isa = cpu_max_isa();
  g_isa.store(int(isa));
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

}  // namespace seek
