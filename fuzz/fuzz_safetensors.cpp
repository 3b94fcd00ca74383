// libFuzzer target: parse_safetensors_header on arbitrary bytes taken as a whole file. Any
// exception other than seek::Error, any out-of-bounds read (ASan) or UB (UBSan) is a finding.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    seek::SafetensorsHeader h =
        seek::parse_safetensors_header(data, size, size, "fuzz.safetensors");
    // Accepted headers must describe only bytes inside the input.
    for (const seek::TensorEntry& t : h.tensors)
      if (t.begin > t.end || h.data_start + t.end > size) __builtin_trap();
  } catch (const seek::Error&) {
  }
  return 0;
}
