#include "dist/comm.h"

#include <mpi.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
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
void allreduce(std::span<T> x) {
  for (size_t off = 0; off < x.size(); off += size_t(kMaxCount)) {
    const int n = int(std::min<size_t>(size_t(kMaxCount), x.size() - off));
    check(MPI_Allreduce(MPI_IN_PLACE, x.data() + off, n, type_of<T>(), MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
  }
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
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  g_started = true;
  mpi_ = true;
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
  if (mpi_ && size_ > 1) allreduce(x);
}
void Comm::allreduce_sum(std::span<double> x) const {
  if (mpi_ && size_ > 1) allreduce(x);
}
void Comm::allreduce_sum(std::span<int64_t> x) const {
  if (mpi_ && size_ > 1) allreduce(x);
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
    check(MPI_Reduce_scatter(x.data(), out.data(), rc.data(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Reduce_scatter");
    std::copy(out.begin(), out.end(), x.begin() + off);
    return;
  }
  int64_t off = 0;
  for (int r = 0; r < size_; ++r) {
    for (int64_t p = 0; p < counts[size_t(r)]; p += kMaxCount) {
      const int n = int(std::min(kMaxCount, counts[size_t(r)] - p));
      float* d = x.data() + off + p;
      check(MPI_Reduce(r == rank_ ? MPI_IN_PLACE : d, d, n, MPI_FLOAT, MPI_SUM, r, MPI_COMM_WORLD),
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
      check(MPI_Bcast(x.data() + off + p, n, MPI_FLOAT, r, MPI_COMM_WORLD), "MPI_Bcast");
    }
    off += counts[size_t(r)];
  }
}

void Comm::broadcast(void* data, size_t bytes, int root) const {
  if (!mpi_ || size_ == 1) return;
  auto* p = static_cast<char*>(data);
  for (size_t off = 0; off < bytes; off += size_t(kMaxCount)) {
    const int n = int(std::min<size_t>(size_t(kMaxCount), bytes - off));
    check(MPI_Bcast(p + off, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
}

void Comm::barrier() const {
  if (mpi_ && size_ > 1) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void Comm::abort(int code) const {
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
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
