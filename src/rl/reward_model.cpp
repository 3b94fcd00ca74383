#include "rl/reward_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/dtype.h"
#include "core/error.h"
#include "core/io.h"
#include "core/safetensors.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "rl/answer_format.h"
#include "rl/eval.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace seek::rl {

// ---- preference pairs ----

PreferencePair pair_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: a pair must be a JSON object, got {}", where, j.dump());
  PreferencePair p;
  p.where = where;
  auto prompt = j.find("prompt");
  if (prompt == j.end())
    fail("{}: missing field \"prompt\" (a string or a list of {{role, content}})", where);
  if (prompt->is_string()) {
    p.messages = nlohmann::json::array({{{"role", "user"}, {"content", *prompt}}});
  } else if (prompt->is_array()) {
    // The checks (non-empty, string role and content, the user's turn last) are the task files'.
    try {
      nlohmann::json task = nlohmann::json::object();
      task["messages"] = *prompt;
      p.messages = task_from_json(task, where).messages;
    } catch (const Error& e) {
      fail("{} (field \"prompt\")", e.what());
    }
  } else {
    fail("{}: field \"prompt\" must be a string or a list of {{role, content}}, got {}", where,
         prompt->dump());
  }
  for (auto [field, out] : {std::pair{"chosen", &p.chosen}, {"rejected", &p.rejected}}) {
    auto f = j.find(field);
    if (f == j.end()) fail("{}: missing field \"{}\" (a string)", where, field);
    if (!f->is_string()) fail("{}: field \"{}\" must be a string, got {}", where, field, f->dump());
    *out = f->get<std::string>();
  }
  if (p.chosen == p.rejected)
    fail("{}: \"chosen\" and \"rejected\" are the same text (the pair prefers nothing)", where);
  return p;
}

std::vector<PreferencePair> load_pairs(const std::string& path, int64_t* skipped) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}: no such file", path);
  std::vector<PreferencePair> pairs;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (trim(line).empty()) continue;
    const std::string where = fmt::format("{}:{}", path, n);
    try {
      pairs.push_back(pair_from_json(parse_json(line, where), where));
    } catch (const Error&) {
      if (!skipped) throw;
      ++*skipped;
    }
  }
  if (pairs.empty()) fail("{}: no preference pairs (one JSON object per line)", path);
  return pairs;
}

std::vector<int32_t> render_answer(const tokenizer::ChatTemplate& tmpl,
                                   const tokenizer::Tokenizer& tok,
                                   const nlohmann::json& messages, std::string_view answer) {
  nlohmann::json conv = messages;
  conv.push_back({{"role", "assistant"}, {"content", std::string(answer)}});
  return tok.encode(tmpl.render(conv, /*add_generation_prompt=*/false),
                    /*add_special_tokens=*/false);
}

// ---- the head and its loss ----

std::vector<double> head_scores(const float* xn, int64_t H, std::span<const int64_t> last,
                                const float* w) {
  std::vector<double> r(last.size());
  for (size_t i = 0; i < last.size(); ++i) {
    const float* x = xn + last[i] * H;  // [H]
    double s = 0.0;
    for (int64_t h = 0; h < H; ++h) s += double(w[h]) * double(x[h]);
    r[i] = s;
  }
  return r;
}

double bradley_terry(const float* xn, int64_t H, std::span<const int64_t> last, const float* w,
                     double scale, float* dxn, float* dw, std::vector<double>* scores) {
  if (last.size() % 2) fail("bradley_terry: {} sequences do not form pairs", last.size());
  const std::vector<double> r = head_scores(xn, H, last, w);
  double loss = 0.0;
  for (size_t k = 0; k < last.size(); k += 2) {
    const double d = r[k] - r[k + 1];
    // −log σ(d) = softplus(−d), in the form that cannot overflow.
    loss += d > 0 ? std::log1p(std::exp(-d)) : -d + std::log1p(std::exp(d));
    if (!dxn) continue;
    // ∂/∂d −log σ(d) = −σ(−d); r_chosen gets it, r_rejected its negation.
    const double g = -scale / (1.0 + std::exp(d));
    for (int side = 0; side < 2; ++side) {
      const double gr = side == 0 ? g : -g;
      const float* x = xn + last[k + side] * H;
      float* dx = dxn + last[k + side] * H;
      for (int64_t h = 0; h < H; ++h) {
        dx[h] += float(gr * w[h]);  // ∂r/∂xn = w
        dw[h] += float(gr * x[h]);  // ∂r/∂w = xn
      }
    }
  }
  if (scores) *scores = r;
  return scale * loss;
}

std::vector<double> score_sequences(const model::ModelConfig& cfg, const model::ModelWeights& w,
                                    std::span<const float> head,
                                    std::span<const std::vector<int32_t>> seqs,
                                    int64_t max_batch_tokens) {
  if (int64_t(head.size()) != cfg.hidden_size)
    fail("reward head has {} values, the model's hidden size is {}", head.size(), cfg.hidden_size);
  std::vector<double> out;
  out.reserve(seqs.size());
  model::ModelGrads none;
  for (size_t begin = 0; begin < seqs.size();) {
    // One forward over as many whole sequences as fit the budget (at least one).
    model::TokenBatch b;
    std::vector<int64_t> last;
    int64_t T = 0;
    size_t end = begin;
    for (; end < seqs.size(); ++end) {
      const std::vector<int32_t>& s = seqs[end];
      if (s.empty()) fail("reward model: an empty token sequence has no score");
      if (int64_t(s.size()) > cfg.max_position_embeddings)
        fail("reward model: a sequence of {} tokens exceeds the model's context ({})", s.size(),
             cfg.max_position_embeddings);
      if (end > begin && T + int64_t(s.size()) > max_batch_tokens) break;
      b.tokens.insert(b.tokens.end(), s.begin(), s.end());
      b.tokens.push_back(s.back());  // a target for the last input; the head never reads it
      b.lengths.push_back(int64_t(s.size()));
      T += int64_t(s.size());
      last.push_back(T - 1);
    }
    model::ObjectiveOptions oo;
    oo.backward = false;
    std::vector<double> r;
    oo.hidden_objective = [&](const float* xn, int64_t, int64_t H, float*) {
      r = head_scores(xn, H, last, head.data());
      return 0.0;
    };
    model::forward_backward(cfg, w, none, b, oo);
    out.insert(out.end(), r.begin(), r.end());
    begin = end;
  }
  return out;
}

// ---- a trained reward model, loaded ----

RewardModel::RewardModel(model::Params p, std::vector<float> head)
    : params_(std::move(p)), weights_(params_.weights()), head_(std::move(head)) {}

std::shared_ptr<const RewardModel> RewardModel::load(const std::string& dir) {
  if (!file_exists(dir + "/config.json"))
    fail("reward model {}: not a model directory (no config.json)", dir);
  const model::ModelConfig cfg = model::ModelConfig::load(dir);
  std::vector<float> head(static_cast<size_t>(cfg.hidden_size));
  {
    const TensorStore store = TensorStore::open(dir, LoadMode::Mmap);
    const Tensor* t = store.find("score.weight");
    if (!t)
      fail("reward model {}: no tensor score.weight (a `seek rm` checkpoint has one; this looks "
           "like a plain language model)", dir);
    if (t->shape != std::vector<int64_t>{1, cfg.hidden_size})
      fail("{}: score.weight has shape {}, expected [1, {}] (one score from the hidden size)",
           t->file, t->shape_str(), cfg.hidden_size);
    if (!model::copy_as_f32(*t, head.data()))
      fail("{}: score.weight has dtype {}, expected F32/BF16/F16", t->file, dtype_name(t->dtype));
  }
  std::shared_ptr<RewardModel> m(new RewardModel(model::Params::load(cfg, dir), std::move(head)));
  m->tok_ = std::make_shared<const tokenizer::Tokenizer>(tokenizer::Tokenizer::load(dir));
  m->tmpl_ = std::make_shared<const tokenizer::ChatTemplate>(tokenizer::ChatTemplate::load(dir));
  return m;
}

std::vector<int32_t> RewardModel::render(const nlohmann::json& messages, std::string_view answer,
                                         bool* truncated) const {
  std::vector<int32_t> ids = render_answer(*tmpl_, *tok_, messages, answer);
  const auto ctx = size_t(config().max_position_embeddings);
  if (truncated) *truncated = ids.size() > ctx;
  if (ids.size() > ctx) ids.erase(ids.begin(), ids.end() - ptrdiff_t(ctx));
  return ids;
}

std::vector<double> RewardModel::score(std::span<const std::vector<int32_t>> seqs) const {
  return score_sequences(config(), weights_, head_, seqs);
}

RewardModelReward::RewardModelReward(std::shared_ptr<const RewardModel> model, double weight)
    : model_(std::move(model)), weight_(weight) {}

RewardResult RewardModelReward::score(const RewardInput& in) const {
  return score_batch(std::span(&in, 1))[0];
}

std::vector<RewardResult> RewardModelReward::score_batch(std::span<const RewardInput> in) const {
  std::vector<std::vector<int32_t>> seqs;
  std::vector<bool> truncated;
  for (const RewardInput& i : in) {
    const bool has_messages =
        i.task.is_object() && i.task.contains("messages") && i.task["messages"].is_array();
    const nlohmann::json messages =
        has_messages ? i.task["messages"]
                     : nlohmann::json::array({{{"role", "user"}, {"content", i.prompt}}});
    bool t = false;
    seqs.push_back(model_->render(messages, i.completion, &t));
    truncated.push_back(t);
  }
  const std::vector<double> raw = model_->score(seqs);
  std::vector<RewardResult> out(in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    out[k].reward = weight_ * raw[k];
    out[k].reason = fmt::format("reward model score {:.4f}", raw[k]);
    if (truncated[k]) out[k].reason += fmt::format(" (last {} tokens)", seqs[k].size());
  }
  return out;
}

}  // namespace seek::rl
