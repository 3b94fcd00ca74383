// Expert parallelism without MPI: ranks as threads of one process, exchanging rows through shared
// memory (ThreadExchange), each training step on its share of a batch. The shares' gradients add
// up to the whole batch's, the experts' ones from the rows of every rank; the multi-process run
// under mpirun is tests/cli/distributed_test.cpp.
#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <random>
#include <thread>

#include "model/expert_parallel.h"
#include "model/params.h"
#include "model/transformer.h"
#include "test_configs.h"

using namespace seek;
using namespace seek::model;

namespace {

// n ranks as threads: each call posts its send buffer, waits for all, copies its part of every
// other rank's, and waits again (so no buffer is reused before everyone has read it).
struct ThreadGroup {
  explicit ThreadGroup(int n) : n(n), bar(n), send(size_t(n)), send64(size_t(n)), send_rows(size_t(n)) {}
  int n;
  std::barrier<> bar;
  std::vector<const float*> send;
  std::vector<const int64_t*> send64;
  std::vector<std::vector<int64_t>> send_rows;
};

class ThreadExchange final : public ExpertExchange {
 public:
  ThreadExchange(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.n; }
  void alltoall(std::span<const int64_t> send, std::span<int64_t> recv, int64_t block) const override {
    g_.send64[size_t(rank_)] = send.data();
    g_.bar.arrive_and_wait();
    for (int q = 0; q < g_.n; ++q)
      std::copy_n(g_.send64[size_t(q)] + rank_ * block, block, recv.data() + q * block);
    g_.bar.arrive_and_wait();
  }
  void alltoallv(const float* send, std::span<const int64_t> send_rows, float* recv,
                 std::span<const int64_t> recv_rows, int64_t width) const override {
    g_.send[size_t(rank_)] = send;
    g_.send_rows[size_t(rank_)].assign(send_rows.begin(), send_rows.end());
    g_.bar.arrive_and_wait();
    receive(send_rows, recv, recv_rows, width);
  }
  // Once every rank has posted: this rank's rows from each, then wait until all have read.
  void receive(std::span<const int64_t> send_rows, float* recv, std::span<const int64_t> recv_rows,
               int64_t width) const {
    int64_t at = 0;
    for (int q = 0; q < g_.n; ++q) {
      const std::vector<int64_t>& sr = g_.send_rows[size_t(q)];
      EXPECT_EQ(sr[size_t(rank_)], recv_rows[size_t(q)]) << "rank " << rank_ << " from " << q;
      int64_t off = 0;
      for (int p = 0; p < rank_; ++p) off += sr[size_t(p)];
      std::copy_n(g_.send[size_t(q)] + off * width, sr[size_t(rank_)] * width, recv + at * width);
      at += recv_rows[size_t(q)];
      if (q != rank_) rows_sent += send_rows[size_t(q)], rows_received += recv_rows[size_t(q)];
    }
    g_.bar.arrive_and_wait();
  }
  // Nonblocking as MPI's: the send buffer is posted, the overlap runs while the other ranks may
  // already copy from it, and the rows are read only after every rank has posted.
  void alltoallv_overlapped(const float* send, std::span<const int64_t> send_rows, float* recv,
                            std::span<const int64_t> recv_rows, int64_t width,
                            const std::function<void(const Progress&)>& overlap) const override {
    g_.send[size_t(rank_)] = send;
    g_.send_rows[size_t(rank_)].assign(send_rows.begin(), send_rows.end());
    auto posted = g_.bar.arrive();
    int polls = 0;
    overlap([&] { ++polls; });
    ++overlaps;
    progress_calls += polls;
    g_.bar.wait(std::move(posted));
    receive(send_rows, recv, recv_rows, width);
  }
  mutable int overlaps = 0, progress_calls = 0;

 private:
  ThreadGroup& g_;
  int rank_;
};

TokenBatch random_rows(const ModelConfig& c, int64_t B, int64_t S, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t;
  for (int64_t i = 0; i < B * (S + 1); ++i) t.push_back(int32_t(rng() % uint32_t(c.vocab_size)));
  return TokenBatch::rows(B, S, std::move(t));
}

// Runs the batch's rows split over `n` thread-ranks with expert parallelism; returns the average
// of their gradients, and each rank's gradient in `per_rank`.
std::vector<float> expert_parallel_step(const Params& p, const TokenBatch& whole, int n,
                                        const ObjectiveOptions& base,
                                        std::vector<std::vector<float>>* per_rank = nullptr,
                                        std::vector<int64_t>* rows_sent = nullptr) {
  ThreadGroup group(n);
  std::vector<std::vector<float>> grads(size_t(n), std::vector<float>(p.size(), 0.0f));
  std::vector<int64_t> sent(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  const int64_t B = int64_t(whole.lengths.size());
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      ThreadExchange ex(group, r);
      ObjectiveOptions o = base;
      o.experts = &ex;
      ModelGrads g = p.grads(grads[size_t(r)].data());
      const TokenBatch share = whole.sequences(size_t(r * B / n), size_t((r + 1) * B / n));
      forward_backward(p.config(), p.weights(), g, share, o);
      sent[size_t(r)] = ex.rows_sent;
      // Every MoE layer's dispatch ran the shared experts meanwhile, forward and backward, and
      // they let the exchange progress between their products.
      EXPECT_GE(ex.overlaps, 4) << "rank " << r;
      EXPECT_GE(ex.progress_calls, 3 * ex.overlaps) << "rank " << r;
    });
  for (auto& t : threads) t.join();
  // Equal shares, each the mean over its own tokens (as the trainer's data parallelism): the
  // whole batch's gradient is their average.
  std::vector<float> sum(p.size(), 0.0f);
  for (const auto& g : grads)
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += g[i] / float(n);
  if (per_rank) *per_rank = std::move(grads);
  if (rows_sent) *rows_sent = sent;
  return sum;
}

// A V3 model with 4 routed experts (two MoE blocks: a main layer and the MTP module's): 2 and 4
// ranks, each with its share of 4 sequences, give the single process's gradient of the whole
// batch (also when the backward recomputes the forward), and a rank's gradient of an expert it
// does not hold is zero.
TEST(ExpertParallel, ThreadRanksAddUpToTheWholeBatch) {
  const ModelConfig c = test::tiny_v3();
  ASSERT_EQ(c.n_routed_experts, 4);
  const Params p = Params::init(c, 0.3, 3);
  const TokenBatch batch = random_rows(c, 4, 12, 5);
  ObjectiveOptions o;
  o.balance_alpha = 0.01;
  std::vector<float> one(p.size(), 0.0f);
  ModelGrads g1 = p.grads(one.data());
  forward_backward(c, p.weights(), g1, batch, o);
  double scale = 0.0;
  for (float x : one) scale = std::max(scale, double(std::fabs(x)));
  ASSERT_GT(scale, 0.0);
  for (const auto& [n, recompute] : {std::pair{2, false}, {4, false}, {2, true}}) {
    // recompute: each block's forward runs again in the backward, its exchanges too.
    ObjectiveOptions on = o;
    on.recompute = recompute;
    std::vector<std::vector<float>> per_rank;
    std::vector<int64_t> sent;
    const std::vector<float> sum = expert_parallel_step(p, batch, n, on, &per_rank, &sent);
    double worst = 0.0;
    for (size_t i = 0; i < one.size(); ++i) worst = std::max(worst, double(std::fabs(sum[i] - one[i])));
    EXPECT_LT(worst, 1e-5 * scale) << n << " ranks";
    for (int r = 0; r < n; ++r) EXPECT_GT(sent[size_t(r)], 0) << "rank " << r << " of " << n;
    // Rank r holds experts [r·4/n, (r+1)·4/n): the others' gradients stay zero there.
    for (const ParamInfo& info : p.infos()) {
      if (info.spec.expert < 0) continue;
      const ExpertRange mine = owned_experts(c.n_routed_experts, 0, n);
      const bool held = info.spec.expert >= mine.begin && info.spec.expert < mine.end;
      double norm = 0.0;
      for (int64_t i = 0; i < info.numel; ++i) norm += std::fabs(per_rank[0][info.offset + size_t(i)]);
      if (held) EXPECT_GT(norm, 0.0) << info.name;
      else EXPECT_EQ(norm, 0.0) << info.name << " (rank 0 of " << n << " does not hold it)";
    }
  }
}

}  // namespace
