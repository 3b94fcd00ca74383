#include "core/memory.h"

#include <malloc.h>

#include <climits>

namespace seek {

void retain_freed_memory() {
  mallopt(M_MMAP_MAX, 0);                // no block gets a mapping of its own
  mallopt(M_TRIM_THRESHOLD, INT_MAX);    // a free heap top stays (up to 2 GB at once)
  mallopt(M_TOP_PAD, 64 << 20);          // and the heap grows in 64 MB steps
}

}  // namespace seek
