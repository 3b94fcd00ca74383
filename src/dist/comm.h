// The distributed layer: one communicator over every process of the job (MPI_COMM_WORLD), used by
// the trainers (data parallelism, ZeRO-1). A process launched by mpirun (OpenMPI sets
// OMPI_COMM_WORLD_SIZE) starts MPI on first use of world(); any other process is one rank of
// one and never touches MPI, so single-process runs need no MPI runtime at all.
//
// Faults: a rank that dies is noticed by mpirun, which ends the whole job; a rank that fails with
// an error calls abort(), which ends the others at once instead of leaving them waiting in a
// collective. Counts above 2^31 elements are sent in pieces.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace seek::dist {

class Comm {
 public:
  // The job's communicator (initialized on the first call).
  static Comm& world();
  // Whether world() has started MPI (the error path calls abort() only then).
  static bool started();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  // In place, every rank's x[i] summed, on every rank.
  void allreduce_sum(std::span<float> x) const;
  void allreduce_sum(std::span<double> x) const;
  void allreduce_sum(std::span<int64_t> x) const;
  // x [Σ counts] on every rank; afterwards rank r's part (offset Σ_{q<r} counts[q], counts[r]
  // elements) holds the sum over ranks of that part (the rest of x is unspecified).
  void reduce_scatter_sum(std::span<float> x, std::span<const int64_t> counts) const;
  // In place: rank r's part of x (as reduce_scatter_sum) to every rank.
  void allgather(std::span<float> x, std::span<const int64_t> counts) const;
  void broadcast(void* data, size_t bytes, int root) const;
  void barrier() const;
  // Ends every rank of the job with `code` (MPI_Abort); a plain exit for a job of one.
  [[noreturn]] void abort(int code) const;

 private:
  Comm();
  int rank_ = 0, size_ = 1;
  bool mpi_ = false;
};

// [begin, end) of the r-th of n near-equal parts of `total` elements (the first total % n parts
// one longer): the shards of ZeRO-1.
struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Range shard(int64_t total, int r, int n);
std::vector<int64_t> shard_counts(int64_t total, int n);

}  // namespace seek::dist
