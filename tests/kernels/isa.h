// Kernel tests run every ISA tier this machine has (scalar reference, AVX2, AVX-512).
#pragma once
#include <vector>

#include "core/cpu.h"

namespace seek::kernels::test {

// The tiers up to the machine's best, lowest first.
inline std::vector<Isa> isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (int(i) <= int(cpu_max_isa())) v.push_back(i);
  return v;
}

// Forces one tier for a scope, then restores the one before.
struct IsaScope {
  Isa saved = cpu_isa();
  explicit IsaScope(Isa isa) { set_cpu_isa(isa); }
  ~IsaScope() { set_cpu_isa(saved); }
};

}  // namespace seek::kernels::test
