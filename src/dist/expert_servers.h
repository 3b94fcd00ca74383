// `mpirun -np N seek run|serve MODEL_DIR --expert-ranks E`: each pipeline stage's routed experts
// split across E ranks (model/expert_parallel.h has the protocol). The group's rank 0 runs the
// stage; the others load only their experts and serve them (model::serve_experts).
#pragma once
#include <functional>
#include <string>

#include "dist/comm.h"
#include "dist/expert_group.h"
#include "model/expert_parallel.h"

namespace seek::dist {

class MpiExpertServers final : public model::ExpertServers {
 public:
  MpiExpertServers(Comm comm, int64_t hidden_size) : comm_(comm), group_(comm), hidden_(hidden_size) {}
  // Rank 0 tells the expert ranks to stop when it goes (with its model), then gathers the
  // group's traffic and hands on_finish one line about it.
  ~MpiExpertServers() override;
  std::function<void(const std::string&)> on_finish;

  const model::ExpertExchange& exchange() const override { return group_; }
  void start(kernels::Precision precision, int64_t tokens) const override;
  std::optional<kernels::Precision> next() const override;
  void served() const override { total_rows(); }  // for rank 0's report

  mutable int64_t forwards = 0, tokens = 0;

 private:
  int64_t total_rows() const;  // rows every rank sent to another (collective, after the stop)
  Comm comm_;
  ExpertGroup group_;
  int64_t hidden_;
};

}  // namespace seek::dist
