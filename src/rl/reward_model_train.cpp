// `seek rm`: the Bradley–Terry training loop (reward_model.h). It follows `seek train`'s loop
// step for step (AdamW, schedule, global-norm clipping, balancing-bias updates, metrics, report,
// atomic checkpoints, exact resume); what differs is the batch (pairs, both sides as sequences
// of one TokenBatch), the objective (a HiddenObjective over the final-normed states) and a
// second parameter group, the score head, clipped together with the model.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "core/json_config.h"
#include "core/safetensors.h"
#include "model/transformer.h"
#include "rl/reward_model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/balance.h"
#include "train/checkpoint.h"
#include "train/report.h"

namespace seek::rl {

namespace fs = std::filesystem;

// ---- config ----

using json_config::check_keys;
using json_config::get;

RmConfig RmConfig::parse(const std::string& text, const std::string& source) {
  RmConfig c;
  c.source = source;
  const nlohmann::json j = json_config::parse(text, source);
  check_keys(j, {"init", "data", "train", "out"}, source);
  get(j, "init", c.init, source);
  if (c.init.empty()) fail("{}: missing \"init\" (the model directory to train a reward head on)", source);
  const std::string ds = source + ": data", ts = source + ": train";
  if (!j.contains("data")) fail("{}: missing \"data\" ({{\"pairs\": FILE.jsonl, \"val\": FILE.jsonl}})", source);
  check_keys(j["data"], {"pairs", "val", "skip_bad"}, ds);
  get(j["data"], "pairs", c.pairs, ds);
  get(j["data"], "val", c.val, ds);
  get(j["data"], "skip_bad", c.skip_bad, ds);
  if (c.pairs.empty()) fail("{}: missing \"pairs\" (a JSONL file of {{prompt, chosen, rejected}})", ds);
  bool has_steps = false;
  if (j.contains("train")) {
    const auto& t = j["train"];
    std::set<std::string> keys = train::ModelRunSettings::keys();
    keys.insert({"steps", "epochs", "max_len"});
    check_keys(t, keys, ts);
    has_steps = t.contains("steps");
    if (has_steps && t.contains("epochs")) fail("{}: give \"steps\" or \"epochs\", not both", ts);
    c.read(t, ts);
    get(t, "steps", c.steps, ts);
    get(t, "epochs", c.epochs, ts);
    get(t, "max_len", c.max_len, ts);
  }
  if (!has_steps && c.epochs == 0.0) c.epochs = 1.0;
  get(j, "out", c.out, source);
  if (c.out.empty()) fail("{}: missing \"out\" (the run directory)", source);
  c.check(ts);
  if (has_steps && c.steps <= 0) fail("{}: \"steps\" must be positive, got {}", ts, c.steps);
  if (!has_steps && !(c.epochs > 0 && std::isfinite(c.epochs))) fail("{}: \"epochs\" must be positive", ts);
  if (c.max_len < 0) fail("{}: \"max_len\" must be positive (or left out: the model's context)", ts);
  auto resolve = [&](const std::string& p) { return json_config::resolve(source, p); };
  c.init = resolve(c.init);
  c.pairs = resolve(c.pairs);
  c.val = resolve(c.val);
  c.out = resolve(c.out);
  if (!file_exists(c.init + "/config.json"))
    fail("{}: \"init\" {} is not a model directory (no config.json)", source, c.init);
  const model::ModelConfig mc = model::ModelConfig::load(c.init);
  if (c.max_len > mc.max_position_embeddings)
    fail("{}: \"max_len\" {} exceeds the model's max_position_embeddings {}", ts, c.max_len,
         mc.max_position_embeddings);
  if (c.max_len == 0) c.max_len = mc.max_position_embeddings;
  c.resolve_save_dtype(&mc, ts);
  return c;
}

RmConfig RmConfig::load(const std::string& path) { return parse(read_file(path), path); }

// ---- training ----

namespace {

struct TokPair {
  std::vector<int32_t> chosen, rejected;
};

// Renders and checks every pair against max_len; a side over it is an error naming the pair's
// line (or, with skip_bad, skipped and counted).
std::vector<TokPair> tokenize(const std::vector<PreferencePair>& pairs,
                              const tokenizer::ChatTemplate& tmpl, const tokenizer::Tokenizer& tok,
                              int64_t max_len, bool skip_bad, int64_t& skipped) {
  std::vector<TokPair> out;
  for (const PreferencePair& p : pairs) {
    TokPair t{render_answer(tmpl, tok, p.messages, p.chosen),
              render_answer(tmpl, tok, p.messages, p.rejected)};
    const int64_t n = int64_t(std::max(t.chosen.size(), t.rejected.size()));
    if (n > max_len) {
      if (!skip_bad)
        fail("{}: {} has {} tokens rendered, more than max_len {} (raise \"max_len\" or set "
             "\"skip_bad\")", p.where, t.chosen.size() >= t.rejected.size() ? "chosen" : "rejected",
             n, max_len);
      ++skipped;
      continue;
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Pairs in an order shuffled per epoch by (seed, epoch); the position is a DataState, so a
// resumed run draws exactly the batches it would have drawn.
class PairOrder {
 public:
  PairOrder(size_t n, uint64_t seed) : n_(n), seed_(seed) { shuffle(); }
  std::vector<size_t> next(int64_t count) {
    std::vector<size_t> idx;
    for (int64_t i = 0; i < count; ++i) {
      if (st_.index >= n_) {
        ++st_.epoch;
        st_.index = 0;
        shuffle();
      }
      idx.push_back(order_[st_.index++]);
    }
    return idx;
  }
  train::DataState state() const { return st_; }
  void set_state(train::DataState s) {
    st_ = s;
    shuffle();
  }

 private:
  void shuffle() {
    order_.resize(n_);
    for (size_t i = 0; i < n_; ++i) order_[i] = i;
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + st_.epoch);
    for (size_t i = n_; i > 1; --i) std::swap(order_[i - 1], order_[rng() % i]);  // Fisher–Yates
  }
  size_t n_;
  uint64_t seed_;
  train::DataState st_;
  std::vector<size_t> order_;
};

constexpr char kHeadMagic[8] = {'S', 'E', 'E', 'K', 'R', 'M', 'H', '1'};

// The head's AdamW moments (the weights are score.weight in model.safetensors, F32).
std::string encode_head_state(const std::vector<float>& m, const std::vector<float>& v) {
  std::string out(kHeadMagic, 8);
  const uint64_t n = m.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out.append(reinterpret_cast<const char*>(m.data()), n * 4);
  out.append(reinterpret_cast<const char*>(v.data()), n * 4);
  return out;
}

void decode_head_state(const std::string& path, size_t n, std::vector<float>& m, std::vector<float>& v) {
  const std::string b = read_file(path);
  uint64_t got = 0;
  if (b.size() >= 16) std::memcpy(&got, b.data() + 8, 8);
  if (b.size() < 16 || std::memcmp(b.data(), kHeadMagic, 8) != 0 || got != n || b.size() != 16 + 8 * n)
    fail("{}: not the score head's optimizer state for hidden size {}", path, n);
  m.resize(n);
  v.resize(n);
  std::memcpy(m.data(), b.data() + 16, n * 4);
  std::memcpy(v.data(), b.data() + 16 + n * 4, n * 4);
}

// score.weight of a checkpoint, or nothing when it has none.
std::vector<float> read_head(const std::string& dir, int64_t H) {
  const TensorStore store = TensorStore::open(dir, LoadMode::Mmap);
  const Tensor* t = store.find("score.weight");
  if (!t) return {};
  if (t->shape != std::vector<int64_t>{1, H})
    fail("{}: score.weight has shape {}, expected [1, {}]", t->file, t->shape_str(), H);
  std::vector<float> w(static_cast<size_t>(H));
  if (!model::copy_as_f32(*t, w.data())) fail("{}: score.weight is not a float tensor", t->file);
  return w;
}

struct PairStats {
  double loss = 0.0, margin = 0.0;
  int64_t correct = 0, n = 0;
};

// Loss, accuracy and mean margin of scores laid out (chosen, rejected) per pair.
PairStats pair_stats(const std::vector<double>& r) {
  PairStats s;
  for (size_t k = 0; k + 1 < r.size(); k += 2) {
    const double d = r[k] - r[k + 1];
    s.loss += d > 0 ? std::log1p(std::exp(-d)) : -d + std::log1p(std::exp(d));
    s.margin += d;
    s.correct += d > 0;
    ++s.n;
  }
  return s;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string run_reward_model_training(const RmConfig& c, const train::RunOptions& opts) {
  c.start(c.out, opts.resume, "reward model");
  fs::create_directories(c.out);
  const model::ModelConfig mc = model::ModelConfig::load(c.init);
  const int64_t H = mc.hidden_size;

  // Data: every pair rendered once, up front, so a bad one fails before any training.
  if (!file_exists(c.init + "/tokenizer.json"))
    fail("{}: \"init\" {} has no tokenizer.json to render the pairs with", c.source, c.init);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(c.init);
  const tokenizer::ChatTemplate tmpl = tokenizer::ChatTemplate::load(c.init);
  int64_t skipped = 0;
  int64_t* skip = c.skip_bad ? &skipped : nullptr;
  std::vector<PreferencePair> train_raw = load_pairs(c.pairs, skip), val_raw;
  if (!c.val.empty()) {
    val_raw = load_pairs(c.val, skip);
  } else {  // every 10th pair held out
    std::vector<PreferencePair> keep;
    for (size_t i = 0; i < train_raw.size(); ++i)
      (i % 10 == 9 ? val_raw : keep).push_back(std::move(train_raw[i]));
    train_raw = std::move(keep);
  }
  const std::vector<TokPair> train_pairs = tokenize(train_raw, tmpl, tok, c.max_len, c.skip_bad, skipped);
  const std::vector<TokPair> val_pairs = tokenize(val_raw, tmpl, tok, c.max_len, c.skip_bad, skipped);
  if (train_pairs.empty()) fail("{}: no training pairs left (skipped {})", c.pairs, skipped);
  std::vector<std::vector<int32_t>> val_seqs;  // chosen, rejected, chosen, ...
  for (const TokPair& p : val_pairs) {
    val_seqs.push_back(p.chosen);
    val_seqs.push_back(p.rejected);
  }
  const int64_t pairs_per_step = c.batch_size * c.grad_accum;
  const int64_t steps = c.steps > 0 ? c.steps
                                    : std::max<int64_t>(1, int64_t(std::ceil(c.epochs * double(train_pairs.size()) /
                                                                              double(pairs_per_step))));
  train::Schedule schedule = c.schedule;
  schedule.total = steps;
  train::SaveDType save_dtype = train::SaveDType::F32;
  train::parse_save_dtype(c.save_dtype, &save_dtype);

  // Model and head. Both optimizers clip nothing themselves: the step clips them together.
  train::AdamWConfig no_clip = c.adamw;
  no_clip.grad_clip = 0.0;
  train::TrainState st;
  const std::string from = opts.resume ? fs::canonical(c.out + "/latest").string() : c.init;
  model::Params p = model::Params::load(mc, from);
  std::vector<float> head = read_head(from, H);
  if (opts.resume && head.empty()) fail("{}: no score.weight to resume", from);
  if (head.empty()) {  // a fresh head, N(0, init_std²) as transformers initializes `score`
    head.resize(size_t(H));
    std::mt19937_64 rng(c.seed);
    std::normal_distribution<float> nd(0.0f, float(c.init_std));
    for (float& x : head) x = nd(rng);
  }
  train::AdamW opt(p, no_clip), hopt(size_t(H), /*decay=*/true, no_clip);
  // The score reads neither the LM head nor the MTP modules: no gradient reaches them, and
  // (as torch skips gradient-less parameters) no weight decay either, so they stay as loaded.
  for (const model::ParamInfo& i : p.infos())
    if (i.spec.role == model::TensorRole::Head || i.spec.mtp) opt.freeze(i);
  PairOrder order(train_pairs.size(), c.seed);
  if (opts.resume) {
    st = train::load_train_state(from, p.size());
    if (!st.master.empty()) p.data() = st.master;
    opt.set_moments(st.m.data(), st.v.data());
    opt.set_steps(st.step);
    std::vector<float> hm, hv;
    decode_head_state(from + "/score_state.bin", size_t(H), hm, hv);
    hopt.set_moments(hm.data(), hv.data());
    hopt.set_steps(st.step);
    order.set_state(st.data);
  }
  const std::string metrics = c.out + "/metrics.jsonl";
  if (!opts.resume) write_file_atomic(metrics, "");
  FILE* mf = std::fopen(metrics.c_str(), "a");
  if (!mf) fail("cannot append to {}", metrics);
  const std::string config_text = read_file(c.source);
  if (opts.progress)
    std::fprintf(stderr, "seek rm: %zu training pairs, %zu held out%s; %lld steps of %lld pairs%s\n",
                 train_pairs.size(), val_pairs.size(),
                 skipped ? fmt::format(" ({} bad pairs skipped)", skipped).c_str() : "",
                 (long long)steps, (long long)pairs_per_step,
                 opts.resume ? fmt::format(", resuming at step {}", st.step).c_str() : "");

  model::ObjectiveOptions oo;
  oo.balance_alpha = c.balance_alpha;
  oo.recompute = c.recompute;
  oo.precision = c.gemm_precision();
  std::vector<float> grad(p.size()), hgrad(static_cast<size_t>(H));
  auto evaluate = [&](int64_t step) {
    if (val_seqs.empty()) return;
    const PairStats s = pair_stats(score_sequences(mc, p.weights(), head, val_seqs));
    const double n = double(s.n);
    std::fprintf(mf, "%s\n", nlohmann::json{{"type", "val"}, {"step", step}, {"val_loss", s.loss / n},
                                            {"accuracy", double(s.correct) / n}, {"margin", s.margin / n},
                                            {"pairs", s.n}}.dump().c_str());
    std::fflush(mf);
    if (opts.progress)
      std::fprintf(stderr, "step %lld: held-out loss %.4f, pairwise accuracy %.1f%% (%lld/%lld)\n",
                   (long long)step, s.loss / n, 100.0 * double(s.correct) / n, (long long)s.correct,
                   (long long)s.n);
  };
  auto save = [&](const std::string& name) {
    st.m = opt.m();
    st.v = opt.v();
    st.data = order.state();
    if (save_dtype != train::SaveDType::F32) st.master = p.data();
    train::save_checkpoint(c.out, name, p, st, c.init,
                           {{"rm_config.json", config_text}, {"score_state.bin", encode_head_state(hopt.m(), hopt.v())}},
                           int(c.keep), save_dtype, {{"score.weight", {1, H}, head.data()}});
    st.master.clear();
  };

  const double t_start = now_s();
  const int64_t first = st.step;
  const int64_t last = opts.stop_after >= 0 ? std::min(steps, opts.stop_after) : steps;
  for (int64_t step = first; step < last; ++step) {
    std::fill(grad.begin(), grad.end(), 0.0f);
    std::fill(hgrad.begin(), hgrad.end(), 0.0f);
    model::ModelWeights w = p.weights();
    model::ModelGrads g = p.grads(grad.data());
    std::vector<double> scores;
    model::StepResult agg;
    double loss = 0.0;
    for (int64_t a = 0; a < c.grad_accum; ++a) {
      model::TokenBatch b;
      std::vector<int64_t> ends;  // last input position of each sequence
      int64_t T = 0;
      for (size_t k : order.next(c.batch_size))
        for (const std::vector<int32_t>* s : {&train_pairs[k].chosen, &train_pairs[k].rejected}) {
          b.tokens.insert(b.tokens.end(), s->begin(), s->end());
          b.tokens.push_back(s->back());  // a target for the last input; the head never reads it
          b.lengths.push_back(int64_t(s->size()));
          T += int64_t(s->size());
          ends.push_back(T - 1);
        }
      std::vector<double> r;
      // Scaled by the step's pair count: the step's loss (and gradient) is the mean over its pairs.
      oo.hidden_objective = [&](const float* xn, int64_t, int64_t h, float* dxn) {
        return bradley_terry(xn, h, ends, head.data(), 1.0 / double(pairs_per_step), dxn, hgrad.data(), &r);
      };
      model::StepResult res = model::forward_backward(mc, w, g, b, oo);
      loss += res.loss;
      scores.insert(scores.end(), r.begin(), r.end());
      if (a == 0) {
        agg = std::move(res);
      } else {
        for (size_t j = 0; j < res.expert_load.size(); ++j)
          for (size_t e = 0; e < res.expert_load[j].size(); ++e) agg.expert_load[j][e] += res.expert_load[j][e];
      }
    }
    // clip_grad_norm_ over the model and the head together, then one AdamW step of each.
    const double gnorm = std::sqrt(opt.grad_sq(grad) + hopt.grad_sq(hgrad));
    if (!std::isfinite(gnorm)) fail("gradient norm is {} at step {}: training diverged", gnorm, step + 1);
    const float coef = float(train::clip_coefficient(gnorm, c.adamw.grad_clip));
    if (coef < 1.0f) {
      for (float& x : grad) x *= coef;
      for (float& x : hgrad) x *= coef;
    }
    const double lr = schedule.at(step);
    opt.step(p, grad, lr);
    hopt.step(head.data(), hgrad, lr);
    train::update_balance_bias(p, agg.moe_layers, agg.expert_load, c.bias_update_speed);
    st.step = step + 1;
    st.tokens += int64_t(scores.size());  // sequences seen (two per pair)

    const PairStats ps = pair_stats(scores);
    if (st.step % c.log_every == 0 || st.step == last || step == first) {
      nlohmann::json moe = nlohmann::json::array();
      for (size_t j = 0; j < agg.moe_layers.size(); ++j)
        moe.push_back({{"layer", agg.moe_layers[j]}, {"load", agg.expert_load[j]},
                       {"maxvio", train::max_violation(agg.expert_load[j])}});
      const double per_step = (now_s() - t_start) / double(step + 1 - first);
      nlohmann::json m = {{"type", "train"}, {"step", st.step}, {"pairs", st.tokens / 2}, {"loss", loss},
                          {"accuracy", double(ps.correct) / double(ps.n)}, {"margin", ps.margin / double(ps.n)},
                          {"lr", lr}, {"grad_norm", gnorm}, {"pairs_per_s", double(pairs_per_step) / per_step},
                          {"moe", moe}};
      std::fprintf(mf, "%s\n", m.dump().c_str());
      std::fflush(mf);
      if (opts.progress)
        std::fprintf(stderr, "step %lld/%lld loss %.4f acc %.2f margin %.3f lr %.2e grad %.3f\n",
                     (long long)st.step, (long long)steps, loss, double(ps.correct) / double(ps.n),
                     ps.margin / double(ps.n), lr, gnorm);
    }
    if (st.step % c.eval_every == 0 || st.step == steps) {
      evaluate(st.step);
      train::write_report(metrics, c.out + "/report.html", "seek rm: " + c.out);
    }
    if (st.step % c.save_every == 0 && st.step != last) save(fmt::format("step-{:06}", st.step));
  }
  std::fclose(mf);
  const std::string name = last == steps ? "final" : fmt::format("step-{:06}", st.step);
  save(name);
  train::write_report(metrics, c.out + "/report.html", "seek rm: " + c.out);
  if (opts.progress)
    std::fprintf(stderr, "seek rm: saved %s/%s (report: %s/report.html)\n", c.out.c_str(), name.c_str(), c.out.c_str());
  return c.out + "/" + name;
}

}  // namespace seek::rl
