// An expert-parallel group over MPI: model::ExpertExchange on a communicator (dist/comm.h).
#pragma once
#include <chrono>

#include "dist/comm.h"
#include "model/expert_parallel.h"

namespace seek::dist {

class ExpertGroup final : public model::ExpertExchange {
 public:
  explicit ExpertGroup(Comm comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void alltoall(std::span<const int64_t> send, std::span<int64_t> recv, int64_t) const override {
    const auto t0 = std::chrono::steady_clock::now();
    comm_.alltoall(send, recv);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  void alltoallv(const float* send, std::span<const int64_t> send_rows, float* recv,
                 std::span<const int64_t> recv_rows, int64_t width) const override {
    for (int q = 0; q < size(); ++q)
      if (q != rank()) rows_sent += send_rows[size_t(q)], rows_received += recv_rows[size_t(q)];
    const auto t0 = std::chrono::steady_clock::now();
    comm_.alltoallv(send, send_rows, recv, recv_rows, width);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // Nonblocking: MPI_Ialltoallv, `overlap` computing meanwhile with MPI_Test as its progress.
  void alltoallv_overlapped(const float* send, std::span<const int64_t> send_rows, float* recv,
                            std::span<const int64_t> recv_rows, int64_t width,
                            const std::function<void(const Progress&)>& overlap) const override {
    for (int q = 0; q < size(); ++q)
      if (q != rank()) rows_sent += send_rows[size_t(q)], rows_received += recv_rows[size_t(q)];
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    Comm::Request req = comm_.alltoallv_async(send, send_rows, recv, recv_rows, width);
    const auto t1 = clock::now();
    overlap([&req] { Comm::done(req); });
    const auto t2 = clock::now();
    Comm::wait(req);
    const auto t3 = clock::now();
    seconds += std::chrono::duration<double>((t1 - t0) + (t3 - t2)).count();
    hidden_seconds += std::chrono::duration<double>(t2 - t1).count();
  }
  // Time spent in the exchanges (waits for the other ranks included) since construction.
  mutable double seconds = 0.0;
  // Computation run while an exchange was in flight (what the overlap could hide).
  mutable double hidden_seconds = 0.0;

 private:
  Comm comm_;
};

}  // namespace seek::dist
