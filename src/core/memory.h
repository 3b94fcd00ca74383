// Process-wide memory tuning.
#pragma once

namespace seek {

// Training allocates and frees the same large activation buffers every step. glibc's malloc
// serves blocks above its mmap threshold (at most 32 MB) with fresh mappings and returns freed
// heap tops to the kernel, so each step faults every page in again and the kernel zeroes it
// (measured: 13-20% of a step of bench_train's small model). Called once by a training run:
// large blocks then come from the heap, and freed memory stays there for the next step. The
// peak footprint is unchanged; memory freed at the end is not returned to the system.
void retain_freed_memory();

}  // namespace seek
