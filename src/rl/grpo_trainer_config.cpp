// `seek grpo`'s config file and its rewards (grpo_trainer.h).
#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "rl/grpo_trainer.h"
#include "rl/rewards.h"

namespace seek::rl {

namespace fs = std::filesystem;

namespace {

void check_keys(const nlohmann::json& j, const std::set<std::string>& allowed,
                const std::string& where) {
  if (!j.is_object()) fail("{} must be an object", where);
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!allowed.count(it.key())) fail("{}: unknown field \"{}\"", where, it.key());
}

template <typename T>
void get(const nlohmann::json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key)) return;
  const nlohmann::json& v = j.at(key);
  // nlohmann converts between numbers and bools silently; a config is clearer strict.
  bool ok = true;
  if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
  else if constexpr (std::is_integral_v<T>) ok = v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>) ok = v.is_number();
  else if constexpr (std::is_same_v<T, std::string>) ok = v.is_string();
  if (!ok) fail("{}: field \"{}\" has the wrong type ({})", where, key, v.dump());
  out = v.get<T>();
}

void positive(int64_t v, const char* key, const std::string& where) {
  if (v <= 0) fail("{}: \"{}\" must be positive, got {}", where, key, v);
}

}  // namespace

GrpoConfig GrpoConfig::parse(const std::string& text, const std::string& source) {
  GrpoConfig c;
  c.source = source;
  c.text = text;
  // GRPO fine-tunes a policy that already answers: small steps, no decay, constant rate.
  c.schedule.kind = "constant";
  c.schedule.lr = 1e-5;
  c.schedule.warmup = 0;
  c.adamw.beta2 = 0.99;
  c.adamw.weight_decay = 0.0;
  if (!valid_utf8(text)) fail("{}: not valid UTF-8", source);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", source, e.what());
  }
  check_keys(j, {"init", "task", "reward", "grpo", "train", "out"}, source);
  get(j, "init", c.init, source);
  if (c.init.empty()) fail("{}: missing \"init\" (the model directory to train)", source);
  get(j, "task", c.task, source);
  if (c.task.empty())
    fail("{}: missing \"task\" (\"countdown\" or a JSONL file of tasks)", source);
  get(j, "out", c.out, source);
  if (c.out.empty()) fail("{}: missing \"out\" (the run directory)", source);

  const fs::path base = fs::path(source).parent_path();
  auto resolve = [&](const std::string& p) {
    return fs::path(p).is_absolute() ? p : (base / p).lexically_normal().string();
  };
  c.init = resolve(c.init);
  c.out = resolve(c.out);
  if (c.task != "countdown") c.task = resolve(c.task);

  // Rewards: normalized to objects with a weight; paths ("model") resolved.
  const std::string rs = source + ": reward";
  nlohmann::json rewards = nlohmann::json::array();
  if (!j.contains("reward")) {
    if (c.task != "countdown")
      fail("{}: missing \"reward\" (how to score {}: e.g. [\"arithmetic\"])", source, c.task);
    rewards.push_back("countdown");
  } else {
    rewards = j["reward"];
    if (rewards.is_string() || rewards.is_object()) rewards = nlohmann::json::array({rewards});
    if (!rewards.is_array() || rewards.empty())
      fail("{}: must be a reward name, a reward config or a non-empty list of them", rs);
  }
  for (size_t i = 0; i < rewards.size(); ++i) {
    const std::string where = fmt::format("{}[{}]", rs, i);
    nlohmann::json r = rewards[i].is_string() ? nlohmann::json{{"name", rewards[i]}} : rewards[i];
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string())
      fail("{}: must be a reward name or an object with a string \"name\"", where);
    double w = 1.0;
    get(r, "weight", w, where);
    if (!std::isfinite(w)) fail("{}: \"weight\" must be a finite number", where);
    r["weight"] = w;
    if (r.contains("model") && r["model"].is_string()) r["model"] = resolve(r["model"]);
    // Built once now so a bad name or field fails before any model is loaded (a reward model is
    // only built by the run: it loads weights).
    if (r["name"] != "rm") {
      nlohmann::json rc = r;
      rc.erase("weight");
      try {
        make_reward(rc);
      } catch (const Error& e) {
        fail("{}: {}", where, e.what());
      }
    }
    c.reward.push_back(std::move(r));
  }

  const std::string gs = source + ": grpo", ts = source + ": train";
  if (j.contains("grpo")) {
    const auto& g = j["grpo"];
    check_keys(g, {"group_size", "prompts_per_step", "steps", "mu", "beta", "eps_low", "eps_high",
                   "advantage", "loss_norm", "temperature", "top_p", "max_tokens"}, gs);
    get(g, "group_size", c.group_size, gs);
    get(g, "prompts_per_step", c.prompts_per_step, gs);
    get(g, "steps", c.steps, gs);
    get(g, "mu", c.mu, gs);
    get(g, "beta", c.loss.beta, gs);
    get(g, "eps_low", c.loss.eps_low, gs);
    get(g, "eps_high", c.loss.eps_high, gs);
    std::string adv = "std", norm = "sequence";
    get(g, "advantage", adv, gs);
    if (adv != "std" && adv != "no_std")
      fail("{}: \"advantage\" must be std or no_std, got \"{}\"", gs, adv);
    c.advantage.scale_by_std = adv == "std";
    get(g, "loss_norm", norm, gs);
    if (norm == "sequence") c.loss.norm = LossNorm::Sequence;
    else if (norm == "token") c.loss.norm = LossNorm::Token;
    else if (norm == "constant") c.loss.norm = LossNorm::Constant;
    else fail("{}: \"loss_norm\" must be sequence, token or constant, got \"{}\"", gs, norm);
    get(g, "temperature", c.temperature, gs);
    get(g, "top_p", c.top_p, gs);
    get(g, "max_tokens", c.max_tokens, gs);
  }
  for (auto [v, k] : {std::pair{c.group_size, "group_size"}, {c.prompts_per_step, "prompts_per_step"},
                      {c.steps, "steps"}, {c.mu, "mu"}, {c.max_tokens, "max_tokens"}})
    positive(v, k, gs);
  if (c.group_size < 2)
    fail("{}: \"group_size\" must be at least 2 (advantages compare completions of one prompt)", gs);
  if (!(c.loss.beta >= 0.0) || !std::isfinite(c.loss.beta))
    fail("{}: \"beta\" must be >= 0 (0: no KL term, no reference copy)", gs);
  if (!(c.loss.eps_low >= 0.0 && c.loss.eps_low < 1.0))
    fail("{}: \"eps_low\" must be in [0, 1), got {}", gs, c.loss.eps_low);
  if (!(c.loss.eps_high >= 0.0) || !std::isfinite(c.loss.eps_high))
    fail("{}: \"eps_high\" must be >= 0, got {}", gs, c.loss.eps_high);
  if (!(c.temperature > 0.0f) || !std::isfinite(c.temperature))
    fail("{}: \"temperature\" must be > 0 (GRPO needs different completions per group), got {}",
         gs, c.temperature);
  if (!(c.top_p > 0.0f && c.top_p <= 1.0f))
    fail("{}: \"top_p\" must be in (0, 1], got {}", gs, c.top_p);
  c.loss.max_len = c.max_tokens;

  if (j.contains("train")) {
    const auto& t = j["train"];
    check_keys(t, {"lr", "weight_decay", "beta1", "beta2", "grad_clip", "warmup", "schedule",
                   "seed", "save_every", "keep_checkpoints", "threads", "log_every", "eval_every",
                   "eval_n"}, ts);
    get(t, "lr", c.schedule.lr, ts);
    get(t, "weight_decay", c.adamw.weight_decay, ts);
    get(t, "beta1", c.adamw.beta1, ts);
    get(t, "beta2", c.adamw.beta2, ts);
    get(t, "grad_clip", c.adamw.grad_clip, ts);
    get(t, "warmup", c.schedule.warmup, ts);
    get(t, "schedule", c.schedule.kind, ts);
    get(t, "seed", c.seed, ts);
    get(t, "save_every", c.save_every, ts);
    get(t, "keep_checkpoints", c.keep, ts);
    get(t, "threads", c.threads, ts);
    get(t, "log_every", c.log_every, ts);
    get(t, "eval_every", c.eval_every, ts);
    get(t, "eval_n", c.eval_n, ts);
  }
  c.schedule.min_lr = c.schedule.lr * 0.1;
  c.schedule.total = c.steps;
  if (!(c.schedule.lr > 0.0) || !std::isfinite(c.schedule.lr))
    fail("{}: \"lr\" must be positive, got {}", ts, c.schedule.lr);
  if (c.schedule.kind != "cosine" && c.schedule.kind != "wsd" && c.schedule.kind != "constant")
    fail("{}: \"schedule\" must be constant, cosine or wsd, got \"{}\"", ts, c.schedule.kind);
  if (c.adamw.beta1 < 0 || c.adamw.beta1 >= 1) fail("{}: \"beta1\" must be in [0, 1)", ts);
  if (c.adamw.beta2 < 0 || c.adamw.beta2 >= 1) fail("{}: \"beta2\" must be in [0, 1)", ts);
  if (c.adamw.weight_decay < 0) fail("{}: \"weight_decay\" must be >= 0", ts);
  if (c.adamw.grad_clip < 0) fail("{}: \"grad_clip\" must be >= 0 (0: no clipping)", ts);
  if (c.schedule.warmup < 0) fail("{}: \"warmup\" must be >= 0", ts);
  if (c.keep < 0) fail("{}: \"keep_checkpoints\" must be >= 0 (0: keep all)", ts);
  if (c.threads < 0) fail("{}: \"threads\" must be >= 0 (0: all cores)", ts);
  if (c.eval_every < 0) fail("{}: \"eval_every\" must be >= 0 (0: never)", ts);
  for (auto [v, k] : {std::pair{c.save_every, "save_every"}, {c.log_every, "log_every"},
                      {c.eval_n, "eval_n"}})
    positive(v, k, ts);
  return c;
}

GrpoConfig GrpoConfig::load(const std::string& path) {
  if (!file_exists(path)) fail("cannot read {}: no such file", path);
  return parse(read_file(path), path);
}

RewardTerms::RewardTerms(std::vector<std::string> names, std::vector<double> weights,
                         std::vector<std::unique_ptr<Reward>> terms)
    : names_(std::move(names)), weights_(std::move(weights)), terms_(std::move(terms)) {
  if (terms_.empty() || names_.size() != terms_.size() || weights_.size() != terms_.size())
    fail("RewardTerms: {} names, {} weights, {} rewards", names_.size(), weights_.size(),
         terms_.size());
}

std::unique_ptr<RewardTerms> RewardTerms::from_config(const nlohmann::json& normalized) {
  std::vector<std::string> names;
  std::vector<double> weights;
  std::vector<std::unique_ptr<Reward>> terms;
  for (const nlohmann::json& r : normalized) {
    nlohmann::json rc = r;
    weights.push_back(rc.value("weight", 1.0));
    rc.erase("weight");
    terms.push_back(make_reward(rc));
    names.push_back(terms.back()->name());
  }
  // Two terms of one name ("countdown" twice, with other settings) stay apart in the metrics.
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t k = 0; k < i; ++k)
      if (names[k] == names[i]) {
        names[i] += fmt::format("_{}", i);
        break;
      }
  return std::make_unique<RewardTerms>(std::move(names), std::move(weights), std::move(terms));
}

std::vector<RewardResult> RewardTerms::score_terms(const RewardInput& in) const {
  std::vector<RewardResult> out;
  out.reserve(terms_.size());
  for (const auto& t : terms_) out.push_back(t->score(in));
  return out;
}

RewardResult RewardTerms::score(const RewardInput& in) const {
  const std::vector<RewardResult> parts = score_terms(in);
  RewardResult r;
  r.correct = parts[0].correct;
  for (size_t i = 0; i < parts.size(); ++i) {
    r.reward += weights_[i] * parts[i].reward;
    r.reason += (i ? "; " : "") + names_[i] + ": " + parts[i].reason;
  }
  return r;
}

}  // namespace seek::rl
