// Inference across pipeline stages without MPI: the V3 fixture loaded as two stages (layers
// [0, 2) and [2, 3), each store holding only its tensors), linked by in-process queues, stage 1
// in a thread running follow_stage. Prefill, decode and a KV-prefix copy (the engine's reuse of
// a busy slot's prefix) give the whole model's logits bit for bit. The mpirun runs are
// tests/cli/distributed_test.cpp and tests/e2e/pipeline.test.js.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "model/transformer.h"

using namespace seek;
using namespace seek::model;

namespace {

const std::string kV3 = std::string(SEEK_FIXTURES) + "/models/v3-tiny";

template <class T>
class Channel {
 public:
  void put(T v) {
    std::lock_guard lk(mu_);
    q_.push_back(std::move(v));
    cv_.notify_one();
  }
  T take() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !q_.empty(); });
    T v = std::move(q_.front());
    q_.pop_front();
    return v;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> q_;
};

struct Wires {
  Channel<std::optional<StageWork>> work;
  Channel<std::vector<float>> hidden, logits;
};

class ThreadLink final : public PipelineLink {
 public:
  ThreadLink(Wires& w, int stage) : w_(w), stage_(stage) {}
  int stage() const override { return stage_; }
  int stages() const override { return 2; }
  void announce(const StageWork& work) const override { w_.work.put(work); }
  void send_next(const std::vector<float>& h) const override { w_.hidden.put(h); }
  void recv_prev(std::vector<float>& h) const override { h = w_.hidden.take(); }
  void send_logits(const std::vector<float>& l) const override { w_.logits.put(l); }
  void recv_logits(std::vector<float>& l) const override { l = w_.logits.take(); }
  std::optional<StageWork> next() const override { return w_.work.take(); }

 private:
  Wires& w_;
  int stage_;
};

Batch chunk(int slot, int64_t start, std::vector<int32_t> tokens) {
  Batch b;
  b.seqs.push_back({slot, start, int64_t(tokens.size()), false});
  b.tokens = std::move(tokens);
  return b;
}

TEST(PipelineLink, TwoStagesInThreadsGiveTheWholeModelsLogits) {
  const auto whole = Model::load(kV3);
  LoadOptions o0, o1;
  o0.last_layer = 2;
  o1.first_layer = 2;
  auto s0 = Model::load(kV3, o0);
  auto s1 = Model::load(kV3, o1);
  EXPECT_TRUE(s0->is_stage());
  EXPECT_EQ(s0->weights_store().find("lm_head.weight"), nullptr);
  EXPECT_EQ(s1->weights_store().find("model.embed_tokens.weight"), nullptr);
  EXPECT_EQ(s1->weights_store().find("model.layers.0.self_attn.kv_a_proj_with_mqa.weight"), nullptr);
  EXPECT_LT(s0->weights_store().total_bytes() + s1->weights_store().total_bytes(),
            whole->weights_store().total_bytes());  // no MTP module
  Wires wires;
  s0->set_pipeline(std::make_unique<ThreadLink>(wires, 0));
  s1->set_pipeline(std::make_unique<ThreadLink>(wires, 1));
  std::thread follower([&] { follow_stage(*s1); });

  KVCache cw(whole->config(), 2, 32), c0(s0->config(), 2, 32);
  ForwardOptions fo;
  std::vector<float> want, got;
  const auto both = [&](const Batch& b) {
    forward(*whole, cw, b, want, fo);
    forward(*s0, c0, b, got, fo);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(got, want);
  };
  both(chunk(0, 0, {1, 17, 300, 42, 7, 9}));  // prefill
  both(chunk(0, 6, {11}));                     // decode
  copy_cache_prefix(*whole, cw, 0, 1, 5);       // slot 1 reuses slot 0's first 5 rows
  copy_cache_prefix(*s0, c0, 0, 1, 5);
  both(chunk(1, 5, {8, 12}));                  // ... and goes on from there
  fo.precision = kernels::Precision::BF16;
  both(chunk(1, 7, {3}));
  wires.work.put(std::nullopt);  // stage 0 ends
  follower.join();
}

}  // namespace
