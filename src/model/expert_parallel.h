// Expert parallelism (V3 §3.2: 64-way, across nodes): the routed experts of every MoE layer are
// split across the ranks of an expert-parallel group, rank r of n holding experts
// [r·E/n, (r+1)·E/n). Each rank routes its own tokens, dispatches every token's row to the ranks
// holding its chosen experts (all-to-all), runs its own experts over the rows it received from
// every rank, and sends the outputs back to be combined with the gate values (all-to-all). The
// backward runs the same exchanges in reverse: output gradients to the experts' ranks, input
// gradients back.
//
// The exchange is an interface so the model needs no MPI: dist::ExpertGroup implements it over an
// MPI communicator. Every rank of a group must run the same sequence of MoE layers (forward and
// backward) with its own tokens, zero rows included, since each layer's exchange is collective.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "kernels/matmul.h"

namespace seek::model {

class ExpertExchange {
 public:
  virtual ~ExpertExchange() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // send and recv hold size() blocks of `block` values; block q of send goes to rank q, block q of
  // recv comes from rank q.
  virtual void alltoall(std::span<const int64_t> send, std::span<int64_t> recv, int64_t block) const = 0;
  // Rows of `width` floats: send_rows[q] consecutive rows of `send` go to rank q (in rank order),
  // recv_rows[q] rows from rank q land in `recv` in rank order.
  virtual void alltoallv(const float* send, std::span<const int64_t> send_rows, float* recv,
                         std::span<const int64_t> recv_rows, int64_t width) const = 0;
  // The same exchange run while this rank computes `overlap` (V3 hides the dispatch behind the
  // shared experts): `overlap(progress)` is called once after the exchange has started and
  // should call `progress` now and then, for transports that move data only inside MPI calls;
  // returns when both are done. `send` must not change and `recv` is not read inside `overlap`.
  // This default exchanges first and then computes.
  using Progress = std::function<void()>;
  virtual void alltoallv_overlapped(const float* send, std::span<const int64_t> send_rows,
                                    float* recv, std::span<const int64_t> recv_rows, int64_t width,
                                    const std::function<void(const Progress&)>& overlap) const {
    alltoallv(send, send_rows, recv, recv_rows, width);
    overlap([] {});
  }
  // Rows this rank sent to other ranks and received from them since construction (the
  // per-rank communication volume; rows a rank keeps for itself are not counted).
  mutable int64_t rows_sent = 0, rows_received = 0;
};

// Inference with the routed experts split across processes (`mpirun -np N seek run
// --expert-ranks E`): rank 0 of an expert group runs every forward with all of its tokens; the
// other ranks, expert ranks, hold only their share of the routed experts and run each MoE
// layer's exchange with no tokens of their own, running their experts on the rows sent to them
// (serve_experts, transformer.h). Rank 0 tells them when a forward starts (and at which
// precision) and, when its model goes, that no more will come.
class ExpertServers {
 public:
  virtual ~ExpertServers() = default;
  virtual const ExpertExchange& exchange() const = 0;
  // Rank 0: a forward of `tokens` tokens starts.
  virtual void start(kernels::Precision precision, int64_t tokens) const = 0;
  // An expert rank: the next forward's precision, or nothing once rank 0 has ended.
  virtual std::optional<kernels::Precision> next() const = 0;
  // An expert rank, after the last forward (the group's bookkeeping).
  virtual void served() const {}
};

// The experts rank r of n holds: [begin, end).
struct ExpertRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
inline ExpertRange owned_experts(int64_t n_experts, int rank, int size) {
  const int64_t per = n_experts / size;
  return {rank * per, (rank + 1) * per};
}

}  // namespace seek::model
