// `mpirun -np N seek run|chat|serve|logits|perplexity MODEL_DIR`: the model's main layers split
// into N pipeline stages, one per rank, each loading only its own tensors (model/pipeline_link.h
// has the protocol). Rank 0 runs the command; the others follow its forwards until it ends
// (model::follow_stage).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "dist/comm.h"
#include "model/pipeline_link.h"
#include "model/transformer.h"

namespace seek::dist {

class MpiPipelineLink final : public model::PipelineLink {
 public:
  explicit MpiPipelineLink(Comm comm);
  // Stage 0's link tells the others to stop when it goes (with its model), then gathers every
  // stage's traffic and hands on_finish one line about it.
  ~MpiPipelineLink() override;
  std::function<void(const std::string&)> on_finish;
  int stage() const override { return comm_.rank(); }
  int stages() const override { return comm_.size(); }
  void announce(const model::StageWork& work) const override;
  void send_next(const std::vector<float>& h) const override;
  void recv_prev(std::vector<float>& h) const override;
  void send_logits(const std::vector<float>& logits) const override;
  void recv_logits(std::vector<float>& logits) const override;

  std::optional<model::StageWork> next() const override;
  void followed() const override { total_bytes(); }  // for rank 0's report

  // Traffic: floats this rank sent to other stages, bytes of announced batches, forwards and
  // tokens run.
  mutable int64_t floats_sent = 0, announced_bytes = 0, forwards = 0, tokens = 0;

 private:
  // Every rank's traffic summed (collective, after the stop).
  int64_t total_bytes() const;
  Comm comm_;
};

// The stage of `m` for rank `rank` of `ranks`: contiguous main layers, sizes within one, the
// earlier stages taking the extra layers (the last also runs the final norm and head).
model::LoadOptions stage_load_options(model::LoadOptions base, int64_t layers, int rank, int ranks);


}  // namespace seek::dist
