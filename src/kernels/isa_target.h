// The instruction set of the code after this line, in a *_avx2.cpp or *_avx512.cpp file (CMake
// defines SEEK_TARGET_AVX2 or SEEK_TARGET_AVX512 for those files; everything else is baseline
// x86-64-v2). A file includes every standard and project header first and this last (the x86
// headers with ISA code include it after their own includes), so only its kernels get the ISA.
// Not -m flags on the whole file: those also compile every standard-library template and inline
// function the file instantiates (std::vector<unsigned>::assign, ...) for that ISA, and the
// linker keeps one copy of each for the whole program, which can be the AVX-512 one: SIGILL on a
// CPU without AVX-512 (the ASan build on a Zen 3 hit it in std::vector::_M_fill_assign).
#pragma once

#if defined(SEEK_TARGET_AVX512)
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vnni,avx512vbmi")
#elif defined(SEEK_TARGET_AVX2)
#pragma GCC target("avx2,fma,f16c,bmi,bmi2")
#else
#error "kernels/isa_target.h belongs in *_avx2.cpp and *_avx512.cpp files only"
#endif
// GCC notes that lambdas returning vectors change the ABI; they are all local to these files.
#pragma GCC diagnostic ignored "-Wpsabi"
