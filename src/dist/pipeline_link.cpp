#include "dist/pipeline_link.h"

#include <fmt/format.h>

#include "core/error.h"
#include "dist/pipeline_runtime.h"

namespace seek::dist {

namespace {

enum Tag { kHidden = 101, kLogits = 102 };
enum Kind : int64_t { kStop = 0, kForward = 1, kCopy = 2 };

// A forward's description as int64 values: kind, precision, attention, slots, capacity, cache
// dtype, T, chunks, then the tokens and (slot, start, n_tokens, all_logits) per chunk.
std::vector<int64_t> encode(const model::StageWork& w) {
  if (w.copy.src >= 0)
    return {kCopy, w.copy.src, w.copy.dst, w.copy.n, w.n_slots, w.capacity, int64_t(w.cache_dtype)};
  std::vector<int64_t> v = {kForward, int64_t(w.options.precision), int64_t(w.options.attention),
                            w.n_slots, w.capacity, int64_t(w.cache_dtype),
                            int64_t(w.batch.tokens.size()), int64_t(w.batch.seqs.size())};
  for (int32_t t : w.batch.tokens) v.push_back(t);
  for (const model::SeqChunk& c : w.batch.seqs) {
    v.push_back(c.slot);
    v.push_back(c.start_pos);
    v.push_back(c.n_tokens);
    v.push_back(c.all_logits);
  }
  return v;
}

model::StageWork decode(const std::vector<int64_t>& v) {
  model::StageWork w;
  if (v[0] == kCopy) {
    if (v.size() != 7) fail("pipeline: a malformed cache copy of {} values", v.size());
    w.copy = {int(v[1]), int(v[2]), v[3]};
    w.n_slots = int(v[4]);
    w.capacity = v[5];
    w.cache_dtype = DType(v[6]);
    return w;
  }
  if (v.size() < 8) fail("pipeline: a malformed forward of {} values", v.size());
  w.options.precision = kernels::Precision(v[1]);
  w.options.attention = model::ForwardOptions::Attention(v[2]);
  w.n_slots = int(v[3]);
  w.capacity = v[4];
  w.cache_dtype = DType(v[5]);
  const int64_t T = v[6], n = v[7];
  if (int64_t(v.size()) != 8 + T + 4 * n) fail("pipeline: a malformed forward of {} values", v.size());
  for (int64_t i = 0; i < T; ++i) w.batch.tokens.push_back(int32_t(v[size_t(8 + i)]));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t* c = v.data() + 8 + T + 4 * i;
    w.batch.seqs.push_back({int(c[0]), c[1], c[2], c[3] != 0});
  }
  return w;
}

// Stage 0's broadcast: the length, then the values (the followers wait in next()).
void broadcast(const Comm& comm, std::vector<int64_t>& v) {
  int64_t n = int64_t(v.size());
  comm.broadcast(&n, sizeof n, 0);
  v.resize(size_t(n));
  comm.broadcast(v.data(), size_t(n) * sizeof(int64_t), 0);
}

}  // namespace

MpiPipelineLink::MpiPipelineLink(Comm comm) : comm_(comm) {}

MpiPipelineLink::~MpiPipelineLink() {
  if (comm_.rank() != 0) return;
  std::vector<int64_t> stop = {kStop};
  try {
    broadcast(comm_, stop);
    const int64_t bytes = total_bytes();
    if (on_finish)
      on_finish(fmt::format(
          "{} pipeline stages: {} forwards of {} tokens; {:.1f} kB between stages per token "
          "(hidden states, logits and the batches announced)",
          comm_.size(), forwards, tokens, double(bytes) / 1e3 / double(std::max<int64_t>(tokens, 1))));
  } catch (...) {  // MPI already gone: the others end with the job
  }
}

int64_t MpiPipelineLink::total_bytes() const {
  std::vector<int64_t> t = {floats_sent * int64_t(sizeof(float)) + announced_bytes};
  comm_.allreduce_sum(t);
  return t[0];
}

void MpiPipelineLink::announce(const model::StageWork& work) const {
  std::vector<int64_t> v = encode(work);
  announced_bytes += int64_t(v.size() * sizeof(int64_t)) * (comm_.size() - 1);
  if (work.copy.src < 0) {
    ++forwards;
    tokens += int64_t(work.batch.tokens.size());
  }
  broadcast(comm_, v);
}

std::optional<model::StageWork> MpiPipelineLink::next() const {
  std::vector<int64_t> v;
  broadcast(comm_, v);
  if (v.empty() || v[0] == kStop) return std::nullopt;
  model::StageWork w = decode(v);
  if (w.copy.src < 0) {
    ++forwards;
    tokens += int64_t(w.batch.tokens.size());
  }
  return w;
}

void MpiPipelineLink::send_next(const std::vector<float>& h) const {
  Comm::Request r = comm_.send_async(h, comm_.rank() + 1, kHidden);
  Comm::wait(r);
  floats_sent += int64_t(h.size());
}

void MpiPipelineLink::recv_prev(std::vector<float>& h) const { comm_.recv(h, comm_.rank() - 1, kHidden); }

void MpiPipelineLink::send_logits(const std::vector<float>& logits) const {
  Comm::Request r = comm_.send_async(logits, 0, kLogits);
  Comm::wait(r);
  floats_sent += int64_t(logits.size());
}

void MpiPipelineLink::recv_logits(std::vector<float>& logits) const {
  comm_.recv(logits, comm_.size() - 1, kLogits);
}

model::LoadOptions stage_load_options(model::LoadOptions base, int64_t layers, int rank, int ranks) {
  const auto stages = stage_layers(layers, ranks);
  base.first_layer = stages[size_t(rank)].first;
  base.last_layer = stages[size_t(rank)].second;
  return base;
}

}  // namespace seek::dist
