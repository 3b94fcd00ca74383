// The one place where the instruction set is chosen, once, at start-up.
#pragma once
#include <string_view>

namespace seek {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// Best ISA this CPU supports, capped by the environment variable SEEK_ISA (scalar|avx2|avx512).
Isa cpu_isa();
// Override for tests that run every kernel variant; never above what the CPU supports.
void set_cpu_isa(Isa isa);
Isa cpu_max_isa();
std::string_view isa_name(Isa isa);

}  // namespace seek
