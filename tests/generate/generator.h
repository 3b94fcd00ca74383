// Transitional, for tests/serve/engine_test.cpp only: it still names the single-sequence
// Generator that the engine replaced, and now gets the reference loop under that name. Delete
// this header when that test moves to tests/generate and includes reference_loop.h itself.
#pragma once
#include "generate/reference_loop.h"

namespace seek::generate {
using Generator = ReferenceLoop;
using GenerateParams = ReferenceParams;
}  // namespace seek::generate
