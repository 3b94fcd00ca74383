// `seek grpo`'s config file and its rewards (grpo_trainer.h).
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "core/json_config.h"
#include "rl/grpo_trainer.h"
#include "rl/rewards.h"

namespace seek::rl {

using json_config::check_keys;
using json_config::get;
using json_config::positive;

GrpoConfig GrpoConfig::parse(const std::string& text, const std::string& source) {
  GrpoConfig c;
  c.source = source;
  c.text = text;
  // GRPO fine-tunes a policy that already answers: small steps, no decay, constant rate; a
  // step costs a batch of rollouts, so it is logged, evaluated and saved more often.
  c.schedule.kind = "constant";
  c.schedule.lr = 1e-5;
  c.schedule.min_lr = c.schedule.lr * 0.1;
  c.schedule.warmup = 0;
  c.adamw.beta2 = 0.99;
  c.adamw.weight_decay = 0.0;
  c.log_every = 1;
  c.eval_every = 50;
  c.save_every = 50;
  const nlohmann::json j = json_config::parse(text, source);
  check_keys(j, {"init", "task", "reward", "grpo", "train", "out"}, source);
  get(j, "init", c.init, source);
  if (c.init.empty()) fail("{}: missing \"init\" (the model directory to train)", source);
  get(j, "task", c.task, source);
  if (c.task.empty())
    fail("{}: missing \"task\" (\"countdown\" or a JSONL file of tasks)", source);
  get(j, "out", c.out, source);
  if (c.out.empty()) fail("{}: missing \"out\" (the run directory)", source);

  auto resolve = [&](const std::string& p) { return json_config::resolve(source, p); };
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
    // The schedule's "min_lr" (lr / 10) and "wsd_decay" are not GRPO's to set.
    std::set<std::string> keys = train::RunSettings::keys();
    keys.erase("min_lr");
    keys.erase("wsd_decay");
    keys.insert("eval_n");
    check_keys(t, keys, ts);
    c.read(t, ts);
    get(t, "eval_n", c.eval_n, ts);
  }
  c.schedule.total = c.steps;
  c.check(ts);
  if (c.eval_every < 0) fail("{}: \"eval_every\" must be >= 0 (0: never)", ts);
  positive(c.eval_n, "eval_n", ts);
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
