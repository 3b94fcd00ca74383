#include "dist/comm.h"

#include <mpi.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace seek::dist {

namespace {

bool g_started = false;

// Launched by mpirun (OpenMPI) or another PMI launcher with more than one process.
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fail("MPI: {} failed: {}", what, std::string(msg, size_t(len)));
  }
}

constexpr int64_t kMaxCount = std::numeric_limits<int>::max() / 2;

template <class T>
MPI_Datatype type_of();
template <>
MPI_Datatype type_of<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype type_of<double>() { return MPI_DOUBLE; }
template <>
MPI_Datatype type_of<int64_t>() { return MPI_INT64_T; }

template <class T>
void allreduce(std::span<T> x, MPI_Comm comm) {
  for (size_t off = 0; off < x.size(); off += size_t(kMaxCount)) {
    const int n = int(std::min<size_t>(size_t(kMaxCount), x.size() - off));
    check(MPI_Allreduce(MPI_IN_PLACE, x.data() + off, n, type_of<T>(), MPI_SUM, comm), "MPI_Allreduce");
  }
}

static_assert(sizeof(MPI_Comm) <= sizeof(void*), "MPI_Comm must fit the handle Comm keeps");
MPI_Comm to_mpi(void* h) {
  MPI_Comm c;
  std::memcpy(&c, &h, sizeof c);
  return c;
}
void* to_handle(MPI_Comm c) {
  void* h = nullptr;
  std::memcpy(&h, &c, sizeof c);
  return h;
}

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > std::numeric_limits<int>::max()) fail("MPI: {} {} does not fit an int count", what, v);
  return int(v);
}

}  // namespace

Comm& Comm::world() {
  static Comm c;
  return c;
}

bool Comm::started() { return g_started; }

Comm::Comm() {
  if (!launched_by_mpirun()) return;
  int provided = 0;
  // Serialized: a pipeline stage's forwards run on the server's engine thread.
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  g_started = true;
  mpi_ = true;
  handle_ = to_handle(MPI_COMM_WORLD);
  // Errors come back as return codes (check() turns them into seek::Error) rather than
  // aborting inside MPI without a word.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  // Ranks on one machine share its cores: each gets its share of the CPUs it may run on (one
  // when mpirun bound it to a core), not an OpenMP team per core each, which would oversubscribe
  // the machine (and OpenMP's spinning barriers then crawl).
  if (!std::getenv("OMP_NUM_THREADS")) {
    cpu_set_t set;
    int cpus = 1;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int peers = local ? std::max(1, std::atoi(local)) : 1;
    const int bound_to_fewer = cpus < int(sysconf(_SC_NPROCESSORS_ONLN));
    omp_set_num_threads(std::max(1, bound_to_fewer ? cpus : cpus / peers));
  }
  std::atexit([] {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  });
}

void Comm::allreduce_sum(std::span<float> x) const {
  if (mpi_ && size_ > 1) allreduce(x, to_mpi(handle_));
}
void Comm::allreduce_sum(std::span<double> x) const {
  if (mpi_ && size_ > 1) allreduce(x, to_mpi(handle_));
}
void Comm::allreduce_sum(std::span<int64_t> x) const {
  if (mpi_ && size_ > 1) allreduce(x, to_mpi(handle_));
}

void Comm::reduce_scatter_sum(std::span<float> x, std::span<const int64_t> counts) const {
  if (!mpi_ || size_ == 1) return;
  if (int64_t(counts.size()) != size_) fail("reduce_scatter: {} counts for {} ranks", counts.size(), size_);
  // Parts larger than an int count: reduce to each part's owner in pieces instead.
  const bool small = std::all_of(counts.begin(), counts.end(), [](int64_t c) { return c <= kMaxCount; });
  if (small) {
    std::vector<int> rc(counts.begin(), counts.end());
    int64_t off = 0;
    for (int r = 0; r < rank_; ++r) off += counts[size_t(r)];
    std::vector<float> out(size_t(counts[size_t(rank_)]));
    check(MPI_Reduce_scatter(x.data(), out.data(), rc.data(), MPI_FLOAT, MPI_SUM, to_mpi(handle_)),
          "MPI_Reduce_scatter");
    std::copy(out.begin(), out.end(), x.begin() + off);
    return;
  }
  int64_t off = 0;
  for (int r = 0; r < size_; ++r) {
    for (int64_t p = 0; p < counts[size_t(r)]; p += kMaxCount) {
      const int n = int(std::min(kMaxCount, counts[size_t(r)] - p));
      float* d = x.data() + off + p;
      check(MPI_Reduce(r == rank_ ? MPI_IN_PLACE : d, d, n, MPI_FLOAT, MPI_SUM, r, to_mpi(handle_)),
            "MPI_Reduce");
    }
    off += counts[size_t(r)];
  }
}

void Comm::allgather(std::span<float> x, std::span<const int64_t> counts) const {
  if (!mpi_ || size_ == 1) return;
  int64_t off = 0;
  for (int r = 0; r < size_; ++r) {  // one broadcast per part: any size, exact placement
    for (int64_t p = 0; p < counts[size_t(r)]; p += kMaxCount) {
      const int n = int(std::min(kMaxCount, counts[size_t(r)] - p));
      check(MPI_Bcast(x.data() + off + p, n, MPI_FLOAT, r, to_mpi(handle_)), "MPI_Bcast");
    }
    off += counts[size_t(r)];
  }
}

void Comm::broadcast(void* data, size_t bytes, int root) const {
  if (!mpi_ || size_ == 1) return;
  auto* p = static_cast<char*>(data);
  for (size_t off = 0; off < bytes; off += size_t(kMaxCount)) {
    const int n = int(std::min<size_t>(size_t(kMaxCount), bytes - off));
    check(MPI_Bcast(p + off, n, MPI_BYTE, root, to_mpi(handle_)), "MPI_Bcast");
  }
}

void Comm::barrier() const {
  if (mpi_ && size_ > 1) check(MPI_Barrier(to_mpi(handle_)), "MPI_Barrier");
}

Comm Comm::split(int color) const {
  Comm c(0);
  if (!mpi_) return c;
  MPI_Comm sub;
  check(MPI_Comm_split(to_mpi(handle_), color, rank_, &sub), "MPI_Comm_split");
  MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
  c.mpi_ = true;
  c.handle_ = to_handle(sub);
  MPI_Comm_rank(sub, &c.rank_);
  MPI_Comm_size(sub, &c.size_);
  return c;
}

void Comm::alltoall(std::span<const int64_t> send, std::span<int64_t> recv) const {
  if (send.size() != recv.size() || send.size() % size_t(size_) != 0)
    fail("alltoall: {} values to send and {} to receive among {} ranks", send.size(), recv.size(), size_);
  if (!mpi_ || size_ == 1) {
    std::copy(send.begin(), send.end(), recv.begin());
    return;
  }
  const int block = to_int(int64_t(send.size()) / size_, "alltoall block");
  check(MPI_Alltoall(send.data(), block, MPI_INT64_T, recv.data(), block, MPI_INT64_T, to_mpi(handle_)),
        "MPI_Alltoall");
}

namespace {

// MPI's arguments of an alltoallv counted in rows of `width` floats (so only row counts must fit
// an int): counts and displacements, and the row type (to be freed by the caller).
struct RowsV {
  std::vector<int> sc, sd, rc, rd;
  MPI_Datatype row;
  RowsV(std::span<const int64_t> send_rows, std::span<const int64_t> recv_rows, int64_t width) {
    const size_t n = send_rows.size();
    sc.resize(n), sd.resize(n), rc.resize(n), rd.resize(n);
    int64_t so = 0, ro = 0;
    for (size_t q = 0; q < n; ++q) {
      sc[q] = to_int(send_rows[q], "rows to send");
      rc[q] = to_int(recv_rows[q], "rows to receive");
      sd[q] = to_int(so, "send offset");
      rd[q] = to_int(ro, "receive offset");
      so += send_rows[q];
      ro += recv_rows[q];
    }
    check(MPI_Type_contiguous(to_int(width, "row width"), MPI_FLOAT, &row), "MPI_Type_contiguous");
    MPI_Type_commit(&row);
  }
};

}  // namespace

void Comm::alltoallv(const float* send, std::span<const int64_t> send_rows, float* recv,
                     std::span<const int64_t> recv_rows, int64_t width) const {
  if (int64_t(send_rows.size()) != size_ || int64_t(recv_rows.size()) != size_)
    fail("alltoallv: {} send and {} receive counts for {} ranks", send_rows.size(), recv_rows.size(), size_);
  if (!mpi_ || size_ == 1) {
    std::copy_n(send, send_rows[0] * width, recv);
    return;
  }
  RowsV v(send_rows, recv_rows, width);
  const int rc_ = MPI_Alltoallv(send, v.sc.data(), v.sd.data(), v.row, recv, v.rc.data(),
                                v.rd.data(), v.row, to_mpi(handle_));
  MPI_Type_free(&v.row);
  check(rc_, "MPI_Alltoallv");
}

Comm::Request Comm::alltoallv_async(const float* send, std::span<const int64_t> send_rows,
                                    float* recv, std::span<const int64_t> recv_rows,
                                    int64_t width) const {
  if (int64_t(send_rows.size()) != size_ || int64_t(recv_rows.size()) != size_)
    fail("alltoallv: {} send and {} receive counts for {} ranks", send_rows.size(), recv_rows.size(), size_);
  if (!mpi_ || size_ == 1) {
    std::copy_n(send, send_rows[0] * width, recv);
    return {};
  }
  auto v = std::make_shared<RowsV>(send_rows, recv_rows, width);
  MPI_Request req;
  const int rc_ = MPI_Ialltoallv(send, v->sc.data(), v->sd.data(), v->row, recv, v->rc.data(),
                                 v->rd.data(), v->row, to_mpi(handle_), &req);
  MPI_Type_free(&v->row);  // allowed while the operation is pending (it completes normally)
  check(rc_, "MPI_Ialltoallv");
  Request r;
  std::memcpy(&r.handle, &req, sizeof req);
  r.active = true;
  r.keep = std::move(v);
  return r;
}

static_assert(sizeof(MPI_Request) <= sizeof(void*), "MPI_Request must fit Comm::Request");

Comm::Request Comm::send_async(std::span<const float> x, int dest, int tag) const {
  if (!mpi_ || dest < 0 || dest >= size_ || dest == rank_)
    fail("send: rank {} of {} cannot send to rank {}", rank_, size_, dest);
  MPI_Request req;
  check(MPI_Isend(x.data(), to_int(int64_t(x.size()), "floats to send"), MPI_FLOAT, dest, tag,
                  to_mpi(handle_), &req), "MPI_Isend");
  Request r;
  std::memcpy(&r.handle, &req, sizeof req);
  r.active = true;
  return r;
}

void Comm::recv(std::span<float> x, int src, int tag) const {
  if (!mpi_ || src < 0 || src >= size_ || src == rank_)
    fail("recv: rank {} of {} cannot receive from rank {}", rank_, size_, src);
  MPI_Status st;
  check(MPI_Recv(x.data(), to_int(int64_t(x.size()), "floats to receive"), MPI_FLOAT, src, tag,
                 to_mpi(handle_), &st), "MPI_Recv");
  int got = 0;
  MPI_Get_count(&st, MPI_FLOAT, &got);
  if (int64_t(got) != int64_t(x.size()))
    fail("recv: {} floats from rank {} (tag {}), expected {}", got, src, tag, x.size());
}

void Comm::wait(Request& r) {
  if (!r.active) return;
  MPI_Request req;
  std::memcpy(&req, &r.handle, sizeof req);
  r.active = false;
  const int rc = MPI_Wait(&req, MPI_STATUS_IGNORE);
  r.keep.reset();  // only now: MPI read the counts until completion
  check(rc, "MPI_Wait");
}

bool Comm::done(Request& r) {
  if (!r.active) return true;
  MPI_Request req;
  std::memcpy(&req, &r.handle, sizeof req);
  int flag = 0;
  check(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), "MPI_Test");
  std::memcpy(&r.handle, &req, sizeof req);
  if (flag) r.active = false, r.keep.reset();
  return flag != 0;
}

void Comm::abort(int code) const {
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);  // the whole job, whatever this communicator
  std::exit(code);
}

Range shard(int64_t total, int r, int n) {
  const int64_t base = total / n, extra = total % n;
  const int64_t begin = int64_t(r) * base + std::min<int64_t>(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

std::vector<int64_t> shard_counts(int64_t total, int n) {
  std::vector<int64_t> c;
  for (int r = 0; r < n; ++r) c.push_back(shard(total, r, n).size());
  return c;
}

}  // namespace seek::dist
