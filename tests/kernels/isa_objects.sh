#!/usr/bin/env bash
# The ISA translation units (*_avx2.cpp, *_avx512.cpp) must not hand the linker a shared (weak,
# COMDAT) function compiled for their ISA outside the kernels' own ISA namespaces: the linker
# keeps one copy of each such function for the whole program, and an AVX-512 copy of, say,
# std::vector<unsigned>::assign is a SIGILL on a CPU without AVX-512 (kernels/isa_target.h).
# Arguments: object files; the ISA ones among them are checked.
set -euo pipefail
bad=0
checked=0
for o in "$@"; do
  case "$o" in *_avx2.cpp.o|*_avx512.cpp.o) ;; *) continue ;; esac
  checked=$((checked + 1))
  # Weak functions, mangled names.
  weak=$(nm --defined-only "$o" | awk '$2 == "W" {print $3}' | sort -u)
  [ -z "$weak" ] && continue
  # Functions with an instruction beyond the x86-64-v2 baseline (VEX/EVEX or BMI).
  isa=$(objdump -d --no-show-raw-insn "$o" | awk '
    /^[0-9a-f]+ <.*>:$/ { name = substr($2, 2, length($2) - 3); next }
    NF >= 2 && $2 ~ /^(v[a-z0-9]+|pdep|pext|shlx|shrx|sarx|rorx|andn|bzhi|blsr|blsi|blsmsk|tzcnt|lzcnt)$/ { print name }' | sort -u)
  while read -r f; do
    [ -z "$f" ] && continue
    name=$(echo "$f" | c++filt)
    case "$name" in seek::kernels::avx2::*|seek::kernels::avx512::*|*" seek::kernels::avx2::"*|*" seek::kernels::avx512::"*) continue ;; esac
    echo "$(basename "$o"): shared function compiled for its ISA: $name"
    bad=1
  done < <(comm -12 <(echo "$weak") <(echo "$isa"))
done
if [ "$checked" = 0 ]; then echo "no *_avx2.cpp.o / *_avx512.cpp.o among the arguments"; exit 1; fi
echo "$checked ISA objects checked"
exit $bad
