// The distributed layer: one communicator over every process of the job (MPI_COMM_WORLD) and
// groups split from it, used by the trainers (data parallelism, ZeRO-1, expert parallelism). A process launched by mpirun (OpenMPI sets
// OMPI_COMM_WORLD_SIZE) starts MPI on first use of world(); any other process is one rank of
// one and never touches MPI, so single-process runs need no MPI runtime at all.
//
// Faults: a rank that dies is noticed by mpirun, which ends the whole job; a rank that fails with
// an error calls abort(), which ends the others at once instead of leaving them waiting in a
// collective. Counts above 2^31 elements are sent in pieces.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
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
  // send and recv hold size() equal blocks; block q of send goes to rank q, block q of recv
  // comes from rank q.
  void alltoall(std::span<const int64_t> send, std::span<int64_t> recv) const;
  // Rows of `width` floats: send_rows[q] consecutive rows of send go to rank q, recv_rows[q] rows
  // from rank q land in recv, both in rank order.
  void alltoallv(const float* send, std::span<const int64_t> send_rows, float* recv,
                 std::span<const int64_t> recv_rows, int64_t width) const;
  // Point to point (pipeline parallelism), messages of floats matched by source and tag. A send
  // returns at once with a request; `x` must stay alive and unchanged until wait() on it. A
  // receive blocks until its message is there (its size must be the sent size).
  struct Request {
    void* handle = nullptr;  // the MPI_Request
    bool active = false;
    std::shared_ptr<const void> keep;  // what MPI reads until completion (alltoallv_async's counts)
  };
  Request send_async(std::span<const float> x, int dest, int tag) const;
  // alltoallv without blocking: both buffers must stay alive, `send` unchanged and `recv` unread,
  // until wait() or done() says it completed. Transports that move data only inside MPI calls
  // (shared memory) make progress in done(), so callers computing meanwhile should call it now
  // and then. A rank of one copies at once and returns an inactive request.
  Request alltoallv_async(const float* send, std::span<const int64_t> send_rows, float* recv,
                          std::span<const int64_t> recv_rows, int64_t width) const;
  void recv(std::span<float> x, int src, int tag) const;
  static void wait(Request& r);
  static bool done(Request& r);  // completed (then inactive) without waiting
  // The ranks with the same `color` as a communicator of their own, ranked as here
  // (MPI_Comm_split; collective over this communicator; the group lives until MPI ends).
  Comm split(int color) const;
  void barrier() const;
  // Ends every rank of the job with `code` (MPI_Abort); a plain exit for a job of one.
  [[noreturn]] void abort(int code) const;

 private:
  Comm();
  Comm(int) {}  // a rank of one (split without MPI)
  int rank_ = 0, size_ = 1;
  bool mpi_ = false;
  void* handle_ = nullptr;  // the MPI_Comm
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
