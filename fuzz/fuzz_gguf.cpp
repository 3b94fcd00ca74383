// libFuzzer target: parse_gguf on arbitrary bytes taken as a whole file. Any exception other
// than seek::Error, any out-of-bounds read (ASan) or UB (UBSan) is a finding.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    seek::GgufHeader h = seek::parse_gguf(data, size, "fuzz.gguf");
    // Accepted headers must describe only bytes inside the input.
    for (const seek::GgufTensorInfo& t : h.tensors)
      if (h.data_start + t.offset + t.nbytes > size) __builtin_trap();
  } catch (const seek::Error&) {
  }
  return 0;
}
