// Inference across processes, pipeline-parallel: a model's main layers split into stages, one
// per process, each loading only its own tensors (LoadOptions::first_layer/last_layer). Stage 0
// drives: its forward announces the batch to the others, runs its layers and sends the hidden
// states on; each stage runs its layers on what the previous one sent; the last applies the
// final norm and the head and sends the logits back to stage 0, whose forward returns them. So
// the decode loop (the engine, sampling, the server) runs unchanged in stage 0 and only there;
// the other processes follow its forwards (dist/pipeline_link.h runs them) until it ends.
// The interface keeps model code free of MPI; dist::MpiPipelineLink implements it, and
// follow_stage (transformer.h) is a following stage's loop.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "core/dtype.h"
#include "model/batch.h"

namespace seek::model {

// What a following stage needs to run one forward as stage 0 does, or to copy KV-cache rows as
// it did (copy.src >= 0: the engine's prefix reuse, copy_cache_prefix).
struct StageWork {
  struct CacheCopy {
    int src = -1, dst = -1;
    int64_t n = 0;
  } copy;
  Batch batch;
  ForwardOptions options;  // precision and attention form (the pointer fields stay null)
  int n_slots = 0;         // stage 0's KV cache: the followers' caches match it
  int64_t capacity = 0;
  DType cache_dtype = DType::F32;
};

class PipelineLink {
 public:
  virtual ~PipelineLink() = default;
  virtual int stage() const = 0;
  virtual int stages() const = 0;
  // Stage 0: the batch to the other stages, before its own part of the forward.
  virtual void announce(const StageWork& work) const = 0;
  // Hidden states [T, H] to the next stage, from the previous one.
  virtual void send_next(const std::vector<float>& h) const = 0;
  virtual void recv_prev(std::vector<float>& h) const = 0;
  // The last stage's logits to stage 0 (its size is known to both).
  virtual void send_logits(const std::vector<float>& logits) const = 0;
  virtual void recv_logits(std::vector<float>& logits) const = 0;
  // A following stage: the next work stage 0 announced, or nothing once it has ended.
  virtual std::optional<StageWork> next() const = 0;
  // A following stage, after the last work (the link's own bookkeeping).
  virtual void followed() const {}
};

}  // namespace seek::model
