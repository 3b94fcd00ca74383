#include "rl/grpo_trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "model/params.h"
#include "rl/eval.h"
#include "rl/grpo_trainer_rollout.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/report.h"

namespace seek::rl {

namespace fs = std::filesystem;

// ---- the objective ----

GrpoRows grpo_rows(std::span<const int64_t> lengths, std::span<const int64_t> prompt_len,
                   std::span<const double> advantage, const GrpoLossOptions& opt) {
  const size_t n = lengths.size();
  if (prompt_len.size() != n || advantage.size() != n)
    fail("grpo_rows: {} sequences, {} prompt lengths, {} advantages", n, prompt_len.size(),
         advantage.size());
  // Sequence i has tokens t[0..n_i]; target row j predicts t[j + 1], a completion token when
  // j + 1 >= prompt_len[i].
  int64_t completion = 0;
  for (size_t i = 0; i < n; ++i) {
    if (prompt_len[i] < 1 || prompt_len[i] > lengths[i])
      fail("grpo_rows: sequence {} has {} targets and a prompt of {} tokens (needs 1..{})", i,
           lengths[i], prompt_len[i], lengths[i]);
    completion += lengths[i] + 1 - prompt_len[i];
  }
  GrpoRows r;
  for (size_t i = 0; i < n; ++i) {
    const int64_t len = lengths[i] + 1 - prompt_len[i];
    const double w = loss_weight(opt, len, double(n), double(completion));
    for (int64_t j = 0; j < lengths[i]; ++j) {
      r.completion.push_back(j + 1 >= prompt_len[i]);
      r.advantage.push_back(advantage[i]);
      r.weight.push_back(w);
    }
  }
  return r;
}

model::TokenObjective grpo_objective(const GrpoRows& rows, int64_t row0,
                                     std::span<const double> old_logp,
                                     std::span<const double> ref_logp,
                                     const GrpoLossOptions& opt, std::vector<double>* logp_out,
                                     GrpoStats* stats, bool entropy) {
  return [&rows, row0, old_logp, ref_logp, &opt, logp_out, stats, entropy](
             int64_t row, double logp, std::span<const float> logits, double& dlogp) -> double {
    const size_t r = size_t(row0 + row);
    if (r >= rows.completion.size()) fail("grpo objective: row {} of {}", r, rows.completion.size());
    if (logp_out) (*logp_out)[r] = logp;
    dlogp = 0.0;
    if (!rows.completion[r]) return 0.0;
    // π_old of the first update is this very forward: ρ = exp(logp − logp) = 1 exactly.
    const double old = old_logp.empty() ? logp : old_logp[r];
    const bool has_ref = !ref_logp.empty();
    if (!std::isfinite(logp) || !std::isfinite(old) || (has_ref && !std::isfinite(ref_logp[r])))
      fail("grpo objective: completion row {} has a non-finite log-prob (logp {}, old {})", r,
           logp, old);
    const TokenTerm t = grpo_token_term(logp, old, has_ref ? ref_logp[r] : 0.0, has_ref,
                                        rows.advantage[r], rows.weight[r], opt);
    dlogp = t.dlogp;
    if (stats) {
      stats->loss += t.loss;
      stats->clipped += t.clipped ? 1.0 : 0.0;
      stats->kl += t.kl;
      stats->ratio += t.ratio;
      if (entropy) stats->entropy += rl::entropy(logits.data(), int64_t(logits.size()));
      ++stats->tokens;
    }
    return t.loss;
  };
}

// ---- the run ----

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One step's sequences packed for the model: prompt + completion each.
struct Packed {
  std::vector<int32_t> tokens;
  std::vector<int64_t> lengths, prompt_len;
  std::vector<size_t> first_token, first_row;  // per sequence
};

Packed pack(std::span<const ChatPrompt> prompts, std::span<const Completion> comps) {
  Packed p;
  int64_t rows = 0;
  for (const Completion& c : comps) {
    const std::vector<int32_t>& ids = prompts[c.prompt].ids;
    p.first_token.push_back(p.tokens.size());
    p.first_row.push_back(size_t(rows));
    p.tokens.insert(p.tokens.end(), ids.begin(), ids.end());
    p.tokens.insert(p.tokens.end(), c.tokens.begin(), c.tokens.end());
    p.prompt_len.push_back(int64_t(ids.size()));
    p.lengths.push_back(int64_t(ids.size() + c.tokens.size()) - 1);
    rows += p.lengths.back();
  }
  return p;
}

// Sequences [a, b) as one TokenBatch.
model::TokenBatch slice(const Packed& p, size_t a, size_t b) {
  model::TokenBatch tb;
  const size_t t1 = b < p.lengths.size() ? p.first_token[b] : p.tokens.size();
  tb.tokens.assign(p.tokens.begin() + ptrdiff_t(p.first_token[a]), p.tokens.begin() + ptrdiff_t(t1));
  tb.lengths.assign(p.lengths.begin() + ptrdiff_t(a), p.lengths.begin() + ptrdiff_t(b));
  return tb;
}

// Micro-batches: consecutive sequences up to `budget` tokens (at least one sequence each).
std::vector<std::pair<size_t, size_t>> micro_batches(const Packed& p, int64_t budget) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t a = 0;
  int64_t used = 0;
  for (size_t i = 0; i < p.lengths.size(); ++i) {
    const int64_t n = p.lengths[i] + 1;
    if (i > a && used + n > budget) {
      out.push_back({a, i});
      a = i;
      used = 0;
    }
    used += n;
  }
  if (a < p.lengths.size()) out.push_back({a, p.lengths.size()});
  return out;
}

// What the μ updates of one step saw: sums over every update's completion tokens (total), the
// first update's alone (first: the entropy of the policy that sampled), the mean gradient norm.
struct UpdateStats {
  GrpoStats total, first;
  double grad_norm = 0.0;
};

// μ AdamW updates of p on one step's sequences: the reference log-probs first (β > 0), then per
// update one gradient over all micro-batches; the first update's forward is π_old.
UpdateStats update_policy(const GrpoConfig& c, const model::ModelConfig& mc, model::Params& p,
                          const model::Params* ref, train::AdamW& opt, std::vector<float>& grad,
                          const Packed& pk, std::span<const double> adv, double lr,
                          int64_t micro_batch_tokens) {
  const GrpoRows rows = grpo_rows(pk.lengths, pk.prompt_len, adv, c.loss);
  const auto mbs = micro_batches(pk, micro_batch_tokens);
  std::vector<double> ref_logp, old_logp(size_t(rows.rows()));
  if (ref) {
    ref_logp.resize(size_t(rows.rows()));
    const model::ModelWeights rw = ref->weights();
    model::ModelGrads none;
    for (auto [a, b] : mbs) {
      model::ObjectiveOptions oo;
      oo.backward = false;
      oo.precision = c.gemm_precision();
      const int64_t row0 = int64_t(pk.first_row[a]);
      oo.token_objective = [&ref_logp, row0](int64_t row, double logp, std::span<const float>,
                                             double& dlogp) {
        ref_logp[size_t(row0 + row)] = logp;
        dlogp = 0.0;
        return 0.0;
      };
      model::forward_backward(mc, rw, none, slice(pk, a, b), oo);
    }
  }
  UpdateStats out;
  for (int64_t u = 0; u < c.mu; ++u) {
    std::fill(grad.begin(), grad.end(), 0.0f);
    const model::ModelWeights w = p.weights();
    model::ModelGrads g = p.grads(grad.data());
    GrpoStats s;
    for (auto [a, b] : mbs) {
      model::ObjectiveOptions oo;
      oo.precision = c.gemm_precision();
      oo.token_objective = grpo_objective(
          rows, int64_t(pk.first_row[a]), u == 0 ? std::span<const double>() : old_logp, ref_logp,
          c.loss, u == 0 ? &old_logp : nullptr, &s, /*entropy=*/u == 0);
      model::forward_backward(mc, w, g, slice(pk, a, b), oo);
    }
    out.grad_norm += opt.step(p, grad, lr) / double(c.mu);
    if (u == 0) out.first = s;
    out.total.loss += s.loss;
    out.total.clipped += s.clipped;
    out.total.kl += s.kl;
    out.total.ratio += s.ratio;
    out.total.tokens += s.tokens;
  }
  return out;
}

// Drops the records of steps after `step` (a run killed after logging past its last checkpoint)
// so the resumed run's records follow on exactly.
void truncate_metrics(const std::string& path, int64_t step) {
  std::string kept, line;
  std::istringstream in(read_file(path));
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("step", int64_t(0)) <= step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

}  // namespace

GrpoResult run_grpo(const GrpoConfig& c, const GrpoRunOptions& opts) {
  c.start(c.out, opts.resume, "GRPO");
  if (!file_exists(c.init + "/config.json"))
    fail("{}: \"init\" {} is not a model directory (no config.json)", c.source, c.init);
  if (c.task != "countdown" && !file_exists(c.task))
    fail("{}: \"task\" {} is neither \"countdown\" nor an existing JSONL file of tasks", c.source,
         c.task);
  fs::create_directories(c.out);

  const model::ModelConfig mc = model::ModelConfig::load(c.init);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(c.init);
  const tokenizer::ChatTemplate tmpl = tokenizer::ChatTemplate::load(c.init);
  const TaskSource tasks(c.task);
  std::unique_ptr<RewardTerms> terms;
  if (opts.reward) {
    struct Shared : Reward {
      std::shared_ptr<const Reward> r;
      std::string name() const override { return r->name(); }
      RewardResult score(const RewardInput& in) const override { return r->score(in); }
    };
    auto s = std::make_unique<Shared>();
    s->r = opts.reward;
    std::vector<std::unique_ptr<Reward>> one;
    one.push_back(std::move(s));
    terms = std::make_unique<RewardTerms>(std::vector<std::string>{opts.reward->name()},
                                          std::vector<double>{1.0}, std::move(one));
  } else {
    terms = RewardTerms::from_config(c.reward);
  }
  const train::SaveDType save_dtype = train::model_save_dtype(mc);

  train::TrainState st;
  model::Params p = opts.resume ? model::Params::load(mc, fs::canonical(c.out + "/latest").string())
                                : model::Params::load(mc, c.init);
  train::AdamW opt(p, c.adamw);
  if (opts.resume) {
    st = train::load_train_state(c.out + "/latest", p.size());
    if (!st.master.empty()) p.data() = st.master;  // the file's BF16/FP8 weights are rounded
    opt.set_moments(st.m.data(), st.v.data());
    opt.set_steps(st.step * c.mu);
  }
  // The frozen reference: the init weights, kept only when the KL term needs them.
  std::optional<model::Params> ref;
  if (c.loss.beta > 0.0) ref = model::Params::load(mc, c.init);
  // The engine decodes the policy's own float32 weights; synced after every update.
  std::unique_ptr<model::Model> policy = model::Model::borrow(mc, p.weights());

  const std::string metrics = c.out + "/metrics.jsonl";
  if (!opts.resume) write_file_atomic(metrics, "");
  else if (file_exists(metrics)) truncate_metrics(metrics, st.step);
  std::unique_ptr<FILE, int (*)(FILE*)> mf(std::fopen(metrics.c_str(), "a"), &std::fclose);
  if (!mf) fail("cannot append to {}", metrics);
  auto log = [&](const nlohmann::json& j) {
    std::fprintf(mf.get(), "%s\n", j.dump().c_str());
    std::fflush(mf.get());
  };
  const std::vector<train::ReportChart> charts = [&] {
    std::vector<train::ReportChart> ch;
    train::ReportChart rw{"Reward (mean over completions)", "train", {{"reward", "reward"}}};
    for (const std::string& n : terms->names()) rw.fields.push_back({"reward/" + n, n});
    ch.push_back(rw);
    ch.push_back({"Accuracy", "train", {{"accuracy", "train (sampled)"}}});
    ch.push_back({"Held-out accuracy (greedy)", "eval", {{"accuracy", "accuracy"}, {"ci_lo", "95% CI low"}, {"ci_hi", "95% CI high"}}});
    ch.push_back({"Response length (tokens)", "train", {{"response_length", "mean"}}});
    ch.push_back({"KL to the reference (k3)", "train", {{"kl", "KL"}}});
    ch.push_back({"Entropy (nats/token)", "train", {{"entropy", "entropy"}}});
    ch.push_back({"Clip fraction and ratio", "train", {{"clip_fraction", "clip fraction"}, {"ratio", "ratio mean"}}});
    ch.push_back({"Gradient norm", "train", {{"grad_norm", "grad norm"}}});
    ch.push_back({"Seconds per step", "train", {{"gen_seconds", "generation"}, {"reward_seconds", "rewards"}, {"train_seconds", "training"}}});
    ch.push_back({"Tokens/s", "train", {{"rollout_tokens_per_s", "rollout (generated)"}, {"train_tokens_per_s", "training (forward + backward)"}}});
    return ch;
  }();
  const std::string title = "seek grpo: " + c.out;

  auto save = [&](const std::string& name) {
    st.m = opt.m();
    st.v = opt.v();
    if (save_dtype != train::SaveDType::F32) st.master = p.data();
    train::save_checkpoint(c.out, name, p, st, c.init, {{"grpo_config.json", c.text}}, int(c.keep),
                           save_dtype);
    st.master.clear();
  };
  auto evaluate = [&] {
    const double t0 = now_s();
    const std::vector<EvalTask> et = tasks.eval_tasks(c.seed, c.eval_n);
    generate::EngineOptions eo;
    eo.max_seqs = int(std::min<int64_t>(int64_t(et.size()), c.group_size * c.prompts_per_step));
    eo.cache_slots = 0;
    eo.context = mc.max_position_embeddings;
    eo.kv_budget_bytes = std::numeric_limits<int64_t>::max();
    // F32 activations: run_tasks submits while the engine runs, so which sequences share a
    // batch depends on timing, and only F32 products make greedy tokens independent of that.
    eo.precise = true;
    generate::Engine engine(*policy, &tok, eo);
    RunOptions ro;
    ro.sampling.temperature = 0.0f;  // greedy
    ro.max_tokens = c.max_tokens;
    const EvalSummary s = summarize(run_tasks(engine, tmpl, et, *terms, ro));
    log({{"type", "eval"}, {"step", st.step}, {"accuracy", s.accuracy}, {"ci_lo", s.ci.lo},
         {"ci_hi", s.ci.hi}, {"n", s.n}, {"format_rate", s.format_rate},
         {"response_length", s.mean_completion_tokens}, {"held_out", tasks.held_out()},
         {"eval_seconds", now_s() - t0}});
    if (opts.progress)
      std::fprintf(stderr, "seek grpo: step %lld: %s accuracy %.1f%% [%.1f%%, %.1f%%] (greedy, %lld problems)\n",
                   (long long)st.step, tasks.held_out() ? "held-out" : "training-set",
                   100.0 * s.accuracy, 100.0 * s.ci.lo, 100.0 * s.ci.hi, (long long)s.n);
  };

  if (opts.progress)
    std::fprintf(stderr, "seek grpo: %s, %lld steps of %lld prompts × %lld completions%s%s\n",
                 c.init.c_str(), (long long)c.steps, (long long)c.prompts_per_step,
                 (long long)c.group_size, ref ? "" : " (beta 0: no reference copy)",
                 opts.resume ? fmt::format(", resuming at step {}", st.step).c_str() : "");
  if (c.eval_every > 0 && st.step == 0) evaluate();

  const int64_t last = opts.stop_after >= 0 ? std::min(c.steps, opts.stop_after) : c.steps;
  std::vector<float> grad(p.size());
  const size_t n_terms = terms->names().size();
  for (int64_t step = st.step; step < last; ++step) {
    // ---- rollouts ----
    const double t_gen = now_s();
    const std::vector<EvalTask> step_tasks = tasks.step_tasks(c.seed, step, c.prompts_per_step);
    std::vector<ChatPrompt> prompts;
    for (const EvalTask& t : step_tasks) prompts.push_back(render_prompt(tmpl, tok, t.messages));
    RolloutOptions ro;
    ro.sampling.temperature = c.temperature;
    ro.sampling.top_p = c.top_p;
    ro.sampling.seed = seed_mix(c.seed, uint64_t(step) + 0x5eed);
    ro.group = c.group_size;
    ro.max_tokens = c.max_tokens;
    ro.precise = opts.precise;
    const std::vector<Completion> comps = rollout(*policy, &tok, prompts, ro);
    const double gen_seconds = now_s() - t_gen;

    // ---- rewards and advantages ----
    const double t_reward = now_s();
    const size_t N = comps.size();
    std::vector<double> rewards(N), term_sum(n_terms, 0.0);
    double correct = 0.0, length = 0.0;
    int64_t gen_tokens = 0;
    for (size_t i = 0; i < N; ++i) {
      const EvalTask& t = step_tasks[comps[i].prompt];
      const std::vector<RewardResult> parts = terms->score_terms({t.prompt, comps[i].text, t.record});
      for (size_t k = 0; k < n_terms; ++k) {
        rewards[i] += terms->weight(k) * parts[k].reward;
        term_sum[k] += parts[k].reward;
      }
      correct += parts[0].correct ? 1.0 : 0.0;
      length += double(comps[i].tokens.size());
      gen_tokens += int64_t(comps[i].tokens.size());
    }
    const std::vector<double> adv = group_advantages(rewards, c.group_size, c.advantage);
    const double reward_seconds = now_s() - t_reward;
    const double t_train = now_s();

    // ---- μ updates ----
    const double lr = c.schedule.at(step);
    const Packed pk = pack(prompts, comps);
    const UpdateStats us = update_policy(c, mc, p, ref ? &*ref : nullptr, opt, grad, pk, adv, lr,
                                         opts.micro_batch_tokens);
    int64_t train_tokens = 0;  // positions through forward + backward, all μ updates
    for (int64_t n : pk.lengths) train_tokens += n * c.mu;
    const GrpoStats& total = us.total;
    const GrpoStats& first = us.first;
    p.sync(policy->weights_for_update());
    const double train_seconds = now_s() - t_train;
    st.step = step + 1;
    st.tokens += gen_tokens;

    if (st.step % c.log_every == 0 || st.step == c.steps) {
      const double tok_n = double(std::max<int64_t>(1, total.tokens));
      double mean_reward = 0.0;
      for (double r : rewards) mean_reward += r;
      nlohmann::json m = {{"type", "train"},
                          {"step", st.step},
                          {"reward", mean_reward / double(N)},
                          {"accuracy", correct / double(N)},
                          {"response_length", length / double(N)},
                          {"loss", total.loss / double(c.mu)},
                          {"kl", total.kl / tok_n},
                          {"clip_fraction", total.clipped / tok_n},
                          {"ratio", total.ratio / tok_n},
                          {"entropy", first.entropy / double(std::max<int64_t>(1, first.tokens))},
                          {"grad_norm", us.grad_norm},
                          {"lr", lr},
                          {"rollout_tokens", gen_tokens},
                          {"gen_seconds", gen_seconds},
                          {"reward_seconds", reward_seconds},
                          {"train_seconds", train_seconds},
                          {"rollout_tokens_per_s", double(gen_tokens) / std::max(gen_seconds, 1e-9)},
                          {"train_tokens_per_s", double(train_tokens) / std::max(train_seconds, 1e-9)}};
      for (size_t k = 0; k < n_terms; ++k) m["reward/" + terms->names()[k]] = term_sum[k] / double(N);
      log(m);
      if (opts.progress)
        std::fprintf(stderr, "step %lld/%lld reward %.3f acc %.2f len %.1f kl %.4f ent %.3f gen %.1fs train %.1fs (%.0f tok/s)\n",
                     (long long)st.step, (long long)c.steps, mean_reward / double(N), correct / double(N),
                     length / double(N), total.kl / tok_n, m["entropy"].get<double>(), gen_seconds,
                     train_seconds, double(gen_tokens) / std::max(gen_seconds, 1e-9));
    }
    if (c.eval_every > 0 && st.step % c.eval_every == 0) evaluate();
    if (st.step % c.log_every == 0 || st.step == c.steps)
      train::write_charts_report(metrics, c.out + "/report.html", title, charts);
    if (st.step % c.save_every == 0 && st.step != last) save(fmt::format("step-{:06}", st.step));
  }
  mf.reset();
  const std::string name = last == c.steps ? "final" : fmt::format("step-{:06}", st.step);
  save(name);
  train::write_charts_report(metrics, c.out + "/report.html", title, charts);
  if (opts.progress)
    std::fprintf(stderr, "seek grpo: saved %s/%s (report: %s/report.html)\n", c.out.c_str(),
                 name.c_str(), c.out.c_str());
  return {c.out + "/" + name, ref ? int64_t(ref->size()) : 0};
}

}  // namespace seek::rl
