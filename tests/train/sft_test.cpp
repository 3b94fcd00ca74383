// `seek sft`: chat records rendered with the model's own template, the loss mask on exactly the
// assistant's tokens, every kind of bad record, packing (one sequence per sample, within the
// budget, each sample once per epoch, resumable), and short runs on a tiny random model: the
// assistant loss drops, prompt tokens carry no gradient, resume is bit for bit, and patience
// stops the run with OUT/final = the best-validation checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/io.h"
#include "model/params.h"
#include "model/transformer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tools/make_model.h"
#include "train/bpe_trainer.h"
#include "train/chat_template.h"
#include "train/sft.h"
#include "train/sft_data.h"

using namespace seek;
using namespace seek::train;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kTokenizer = std::string(SEEK_FIXTURES) + "/tokenizer/deepseek-v3";

std::string tmpdir(const std::string& name) {
  const std::string d = fs::temp_directory_path().string() + "/seek_sft_test_" + name + "_" + std::to_string(getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

json two_turns() {
  return json::array({{{"role", "system"}, {"content", "You are terse."}},
                      {{"role", "user"}, {"content", "What is 2 + 3?"}},
                      {{"role", "assistant"}, {"content", "5"}, {"reasoning_content", "2 + 3 = 5."}},
                      {{"role", "user"}, {"content", "And times 4?"}},
                      {{"role", "assistant"}, {"content", "20"}}});
}

// A record: "add A and B" → reasoning "A + B = C." and answer C (C = `answer` when given).
std::string record(int a, int b, int answer = -1, const std::string& trailing_user = "") {
  const int c = answer >= 0 ? answer : a + b;
  json m = json::array({{{"role", "user"}, {"content", fmt::format("add {} and {}", a, b)}},
                        {{"role", "assistant"},
                         {"content", std::to_string(c)},
                         {"reasoning_content", fmt::format("{} + {} = {}.", a, b, c)}}});
  if (!trailing_user.empty()) m.push_back({{"role", "user"}, {"content", trailing_user}});
  return json{{"messages", m}}.dump() + "\n";
}

// A tiny DeepSeek-V3-shaped model (MoE + MTP) with random weights from the project's tools and a
// small BPE tokenizer carrying DeepSeek-V3's chat template, written to DIR/model.
std::string tiny_model(const std::string& dir) {
  std::string corpus;
  for (int i = 0; i < 40; ++i)
    corpus += fmt::format("add {} and {}\n{} + {} = {}.\n", i, 40 - i, i, 40 - i, 40) + "What is it? And times?\n";
  const BpeResult bpe = train_bpe({corpus}, 320, kDeepSeekV3ChatTemplate);
  const std::string m = dir + "/model";
  fs::create_directories(m);
  write_file_atomic(m + "/tokenizer.json", bpe.tokenizer.dump(1));
  write_file_atomic(m + "/tokenizer_config.json", bpe.tokenizer_config.dump(1));
  tools::MakeModelOptions o;
  o.config = model::ModelConfig::from_json(json::parse(R"({
    "model_type": "deepseek_v3", "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
    "num_hidden_layers": 2, "num_attention_heads": 2, "q_lora_rank": 16, "kv_lora_rank": 16,
    "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
    "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
    "first_k_dense_replace": 1, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
    "n_group": 2, "topk_group": 1, "norm_topk_prob": true, "routed_scaling_factor": 2.5,
    "max_position_embeddings": 256, "num_nextn_predict_layers": 1, "bos_token_id": 0, "eos_token_id": 1,
    "torch_dtype": "bfloat16", "vocab_size": )" + std::to_string(bpe.vocab_size) + "}"), "tiny");
  o.weight_gain = 0.5;
  o.tokenizer_dir = m;
  tools::make_random_model(o, m);
  return m;
}

std::vector<json> metric_lines(const std::string& path, const std::string& type) {
  std::vector<json> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    if (j["type"] == type) out.push_back(j);
  }
  return out;
}

}  // namespace

// The mask, token by token, on the tokenizer's own encoding of the template's own rendering:
// 1 from the token after each <｜Assistant｜> through its <｜end▁of▁sentence｜>, 0 elsewhere.
TEST(SftData, MaskIsExactlyTheAssistantTokensOfTheTemplatesRendering) {
  const auto tok = tokenizer::Tokenizer::load(kTokenizer);
  const auto tmpl = tokenizer::ChatTemplate::load(kTokenizer);
  const json msgs = check_record({{"messages", two_turns()}});
  const RenderedChat chat = render_for_training(tmpl, msgs);
  // What the template renders when handed the trained texts itself (R1's output format).
  json full = two_turns();
  full[2]["content"] = "<think>\n2 + 3 = 5.\n</think>\n\n5";
  full[2].erase("reasoning_content");
  ASSERT_EQ(chat.text, tmpl.render(full, false));
  EXPECT_EQ(chat.text,
            "<｜begin▁of▁sentence｜>You are terse.<｜User｜>What is 2 + 3?<｜Assistant｜><think>\n2 + 3 = "
            "5.\n</think>\n\n5<｜end▁of▁sentence｜><｜User｜>And times 4?<｜Assistant｜>20<｜end▁of▁sentence｜>");
  const SftSample s = tokenize_chat(chat, tok);
  ASSERT_EQ(s.tokens, tok.encode(chat.text, false));
  const int32_t assistant = *tok.token_to_id("<｜Assistant｜>"), eos = tok.eos_id();
  bool in_turn = false;
  std::vector<std::string> turns;
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    const int32_t id = s.tokens[i];
    EXPECT_EQ(s.mask[i], in_turn ? 1 : 0) << "token " << i << " " << tok.id_to_token(id);
    if (in_turn) turns.back() += tok.decode(std::vector<int32_t>{id}, false);
    if (id == assistant) {
      in_turn = true;
      turns.emplace_back();
    } else if (id == eos) {
      in_turn = false;
    }
  }
  EXPECT_EQ(turns, (std::vector<std::string>{"<think>\n2 + 3 = 5.\n</think>\n\n5<｜end▁of▁sentence｜>",
                                             "20<｜end▁of▁sentence｜>"}));
  EXPECT_EQ(s.trained(), std::count(s.mask.begin(), s.mask.end(), 1));
}

// R1's template drops the thinking of past answers; the turns being trained keep it.
TEST(SftData, ATemplateThatRewritesAnswersStillTrainsTheThinking) {
  const auto tmpl = tokenizer::ChatTemplate::from_source(
      "{{bos_token}}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{m['content']}}"
      "{% elif m['role'] == 'assistant' %}{% set c = m['content'] %}{% if '</think>' in c %}"
      "{% set c = c.split('</think>')[-1] %}{% endif %}<｜Assistant｜>{{c}}<｜end▁of▁sentence｜>{% endif %}"
      "{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}",
      "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  json msgs = json::array({{{"role", "user"}, {"content", "hi"}},
                           {{"role", "assistant"}, {"content", "hello"}, {"reasoning_content", "greet"}}});
  const RenderedChat c = render_for_training(tmpl, check_record({{"messages", msgs}}));
  EXPECT_EQ(c.text, "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜><think>\ngreet\n</think>\n\nhello<｜end▁of▁sentence｜>");
  ASSERT_EQ(c.assistant.size(), 1u);
  EXPECT_EQ(c.text.substr(c.assistant[0].first, c.assistant[0].second - c.assistant[0].first),
            "<think>\ngreet\n</think>\n\nhello");
  // A template that drops an assistant message is refused, not trained wrongly.
  const auto lossy = tokenizer::ChatTemplate::from_source(
      "{% for m in messages %}{% if m['role'] == 'user' %}{{m['content']}}{% endif %}{% endfor %}", "", "");
  EXPECT_NE(error_of([&] { render_for_training(lossy, check_record({{"messages", msgs}})); })
                .find("does not render assistant message 1 exactly once"),
            std::string::npos);
}

TEST(SftData, EveryKindOfBadRecordNamesFileAndLine) {
  const std::string d = tmpdir("bad");
  const auto tok = tokenizer::Tokenizer::load(kTokenizer);
  const auto tmpl = tokenizer::ChatTemplate::load(kTokenizer);
  const std::string good = json{{"messages", two_turns()}}.dump();
  std::string longer = "x";
  for (int i = 0; i < 300; ++i) longer += " word" + std::to_string(i);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"messages\": [", "invalid JSON"},
      {"[1, 2]", "a record must be a JSON object with \"messages\", got an array"},
      {R"({"msgs": []})", "missing \"messages\""},
      {R"({"messages": "hi"})", "\"messages\" must be an array, got a string"},
      {R"({"messages": []})", "\"messages\" is empty"},
      {R"({"messages": [3]})", "messages[0] must be an object, got a number"},
      {R"({"messages": [{"content": "x"}]})", "messages[0]: missing \"role\""},
      {R"({"messages": [{"role": 1, "content": "x"}]})", "messages[0]: \"role\" must be a string, got a number"},
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}]})",
       "messages[1]: unknown role \"tool\" (system, user or assistant)"},
      {R"({"messages": [{"role": "assistant"}]})", "messages[0]: missing \"content\""},
      {R"({"messages": [{"role": "assistant", "content": null}]})", "messages[0]: \"content\" must be a string, got null"},
      {R"({"messages": [{"role": "assistant", "content": "a", "reasoning_content": 5}]})",
       "messages[0]: \"reasoning_content\" must be a string, got a number"},
      {R"({"messages": [{"role": "user", "content": "a", "reasoning_content": "r"}]})",
       "messages[0]: \"reasoning_content\" belongs to an assistant message, not a user one"},
      {R"({"messages": [{"role": "assistant", "content": "a", "name": "bot"}]})", "messages[0]: unknown field \"name\""},
      {R"({"messages": [{"role": "user", "content": "a"}]})", "no assistant message to train on"},
      {json{{"messages", {{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", longer}}}}}.dump(),
       "tokens, more than the budget"},
  };
  SftLimits lim;
  lim.max_targets = 200;
  lim.max_reason = "the budget";
  std::string all = good + "\n\n";  // line 1 good, line 2 blank (ignored)
  for (const auto& [text, _] : bad) all += text + "\n";
  all += good + "\r\n";
  write_file_atomic(d + "/all.jsonl", all);
  // Each bad line alone (after a good line and a blank one): the error names file and line 3.
  for (size_t i = 0; i < bad.size(); ++i) {
    write_file_atomic(d + "/one.jsonl", good + "\n\n" + bad[i].first + "\n");
    const std::string e = error_of([&] { load_sft({d + "/one.jsonl"}, tmpl, tok, lim, false); });
    EXPECT_EQ(e.rfind(d + "/one.jsonl:3: ", 0), 0u) << e;
    EXPECT_NE(e.find(bad[i].second), std::string::npos) << "case " << i << ": " << e;
  }
  // skip_bad: all of them skipped and counted, both good records kept (CRLF line ends read).
  const SftData s = load_sft({d + "/all.jsonl"}, tmpl, tok, lim, true);
  EXPECT_EQ(s.samples.size(), 2u);
  EXPECT_EQ(s.skipped, int64_t(bad.size()));
  EXPECT_EQ(s.first_skipped.rfind(d + "/all.jsonl:3: invalid JSON", 0), 0u) << s.first_skipped;
  // Nothing usable is an error even when skipping.
  write_file_atomic(d + "/none.jsonl", "[]\n");
  EXPECT_NE(error_of([&] { load_sft({d + "/none.jsonl"}, tmpl, tok, lim, true); }).find("no usable chat record (1 bad ones skipped"),
            std::string::npos);
  fs::remove_all(d);
}

TEST(SftData, PacksAreBudgetedSequencesWithTheShiftedMaskAndResumeExactly) {
  std::vector<SftSample> samples;
  for (int i = 0; i < 9; ++i) {
    SftSample s;
    const int n = 3 + (i * 5) % 7;  // 3..9 tokens
    for (int j = 0; j < n; ++j) {
      s.tokens.push_back(100 * i + j);
      s.mask.push_back(j >= n / 2);
    }
    samples.push_back(s);
  }
  const int64_t budget = 16;
  SftLoader l(samples, budget, /*seed=*/3);
  for (uint64_t epoch = 0; epoch < 3; ++epoch) {
    std::multiset<int32_t> seen;
    const int64_t packs = l.packs_in_epoch(epoch);
    for (int64_t p = 0; p < packs; ++p) {
      const model::TokenBatch b = l.next();
      EXPECT_LE(b.targets(), budget);
      ASSERT_EQ(int64_t(b.weights.size()), b.targets());
      size_t tok = 0, row = 0;
      for (int64_t n : b.lengths) {
        const SftSample& s = samples[size_t(b.tokens[tok] / 100)];
        ASSERT_EQ(n, s.targets());
        for (int64_t j = 0; j <= n; ++j) EXPECT_EQ(b.tokens[tok + size_t(j)], s.tokens[size_t(j)]);
        for (int64_t j = 0; j < n; ++j) EXPECT_EQ(b.weights[row + size_t(j)], float(s.mask[size_t(j + 1)]));
        seen.insert(b.tokens[tok] / 100);
        tok += size_t(n + 1);
        row += size_t(n);
      }
      EXPECT_EQ(tok, b.tokens.size());
    }
    EXPECT_EQ(seen, (std::multiset<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8})) << "epoch " << epoch;  // once each
    EXPECT_EQ(l.state().epoch, epoch);  // the epoch's last pack ends it
  }
  // Another seed orders differently; a loader set to a saved state continues identically.
  SftLoader a(samples, budget, 3), b(samples, budget, 4), c(samples, budget, 3);
  std::vector<std::vector<int32_t>> ta, tb;
  for (int i = 0; i < 4; ++i) ta.push_back(a.next().tokens), tb.push_back(b.next().tokens);
  EXPECT_NE(ta, tb);
  const DataState mid = a.state();
  const auto want = a.next().tokens;
  c.set_state(mid);
  EXPECT_EQ(c.next().tokens, want);
  // File order without shuffling: samples 0, 1, ... packed greedily.
  SftLoader seq(samples, budget, 3, /*shuffle=*/false);
  EXPECT_EQ(seq.next().lengths, (std::vector<int64_t>{2, 7, 5}));  // the next (3) does not fit
}

namespace {

std::string sft_config(const std::string& dir, const std::string& model, const std::string& train_extra,
                       const std::string& data_extra = "") {
  write_file_atomic(dir + "/sft.json", R"({
    "init": ")" + model + R"(",
    "data": {"sft": "chats.jsonl")" + data_extra + R"(},
    // budget 4 × 32 = 128 tokens per micro-batch
    "train": {"seq_len": 32, "batch_size": 4, "lr": 1e-2, "warmup": 0, "schedule": "constant",
              "bias_update_speed": 0, "log_every": 1, "eval_every": 1000, "save_every": 3,
              "save_dtype": "f32")" + train_extra + R"(},
    "out": "run"
  })");
  return dir + "/sft.json";
}

}  // namespace

// Six epochs of grad_accum 2 on 12 records: the assistant loss drops; stopped after 2 steps and
// resumed, the run is the uninterrupted one bit for bit.
TEST(Sft, LearnsTheAnswersAndResumesBitForBit) {
  const std::string a = tmpdir("runa"), b = tmpdir("runb");
  const std::string model = tiny_model(a);
  std::string chats;
  for (int i = 0; i < 12; ++i) chats += record(i * i * 7 % 500, 9 - i % 5);  // answers of 1 to 3 digits: packs of unequal weight
  for (const std::string& d : {a, b}) write_file_atomic(d + "/chats.jsonl", chats);
  RunOptions o;
  o.progress = false;
  TrainConfig ca = TrainConfig::load(sft_config(a, model, R"(, "epochs": 6, "grad_accum": 2)"), TrainConfig::Kind::Sft);
  const std::string final_a = run_sft(ca, o);
  const auto la = metric_lines(ca.out + "/metrics.jsonl", "train");
  const auto data = metric_lines(ca.out + "/metrics.jsonl", "data");
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0]["samples"], 12);
  EXPECT_EQ(data[0]["skipped"], 0);
  const int64_t steps = data[0]["steps"];
  EXPECT_EQ(steps, (data[0]["packs"].get<int64_t>() + 1) / 2);  // all 6 epochs' packs, 2 per step
  EXPECT_GE(data[0]["packs"].get<int64_t>(), 6 * 3);
  ASSERT_EQ(int64_t(la.size()), steps);
  ASSERT_GE(steps, 4);
  for (const json& j : la) {
    EXPECT_GT(j["trained_tokens"].get<int64_t>(), 0);
    EXPECT_LT(j["trained_tokens"].get<int64_t>(), j["tokens"].get<int64_t>());
  }
  EXPECT_LT(la.back()["ce"].get<double>(), 0.6 * la.front()["ce"].get<double>())
      << la.front()["ce"] << " → " << la.back()["ce"];
  EXPECT_NO_THROW(model::Model::load(final_a));
  // Step 1's CE is the mean over the assistant tokens of both its micro-batches together (not a
  // mean of the two micro-batch means): recomputed here from the init weights and the same packs.
  {
    SftLimits lim;
    lim.max_targets = 128;
    const SftData sd = load_sft({a + "/chats.jsonl"}, tokenizer::ChatTemplate::load(model),
                                tokenizer::Tokenizer::load(model), lim, false);
    SftLoader l(sd.samples, 128, ca.seed);
    const model::ModelConfig mc = model::ModelConfig::load(model);
    const model::Params p = model::Params::load(mc, model);
    model::ObjectiveOptions eo;
    eo.backward = false;
    model::ModelGrads none;
    double sum = 0.0, weight = 0.0, mean_of_means = 0.0;
    for (int i = 0; i < 2; ++i) {
      const model::TokenBatch b = l.next();
      double w = 0.0;
      for (float x : b.weights) w += x;
      const double ce = model::forward_backward(mc, p.weights(), none, b, eo).ce;
      sum += ce * w;
      weight += w;
      mean_of_means += ce / 2;
    }
    EXPECT_NEAR(la.front()["ce"].get<double>(), sum / weight, 1e-9);
    EXPECT_GT(std::abs(sum / weight - mean_of_means), 1e-6);  // the two differ here
    EXPECT_EQ(la.front()["trained_tokens"].get<double>(), weight);
  }

  TrainConfig cb = TrainConfig::load(sft_config(b, model, R"(, "epochs": 6, "grad_accum": 2)"), TrainConfig::Kind::Sft);
  o.stop_after = 2;
  run_sft(cb, o);
  EXPECT_EQ(metric_lines(cb.out + "/metrics.jsonl", "train").size(), 2u);
  o.stop_after = -1;
  o.resume = true;
  run_sft(cb, o);
  const auto lb = metric_lines(cb.out + "/metrics.jsonl", "train");
  ASSERT_EQ(lb.size(), la.size());
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(la[i]["loss"].dump(), lb[i]["loss"].dump()) << i;
    EXPECT_EQ(la[i]["grad_norm"].dump(), lb[i]["grad_norm"].dump()) << i;
  }
  EXPECT_EQ(read_file(final_a + "/model.safetensors"), read_file(cb.out + "/final/model.safetensors"));
  fs::remove_all(a);
  fs::remove_all(b);
}

// The loss sees the assistant's tokens only: the last token of a trailing user turn is a target
// and nothing else, and with weight 0 changing it changes neither the loss nor any gradient;
// changing an assistant token does.
TEST(Sft, PromptTokensCarryNoGradient) {
  const std::string d = tmpdir("mask");
  const std::string m = tiny_model(d);
  const auto tok = tokenizer::Tokenizer::load(m);
  const auto tmpl = tokenizer::ChatTemplate::load(m);
  SftLimits lim;
  lim.max_targets = 128;
  write_file_atomic(d + "/c.jsonl", record(2, 3, -1, "thanks") + record(4, 4));
  SftData data = load_sft({d + "/c.jsonl"}, tmpl, tok, lim, false);
  ASSERT_EQ(data.samples.size(), 2u);
  const model::ModelConfig mc = model::ModelConfig::load(m);
  const model::Params p = model::Params::load(mc, m);
  auto run = [&](const std::vector<SftSample>& s, std::vector<float>& grad) {
    SftLoader l(s, 128, 1, false);
    const model::TokenBatch b = l.next();
    EXPECT_EQ(b.lengths.size(), 2u);
    grad.assign(p.size(), 0.0f);
    model::ModelGrads g = p.grads(grad.data());
    return model::forward_backward(mc, p.weights(), g, b, {}).loss;
  };
  std::vector<float> g0, g1, g2;
  const double l0 = run(data.samples, g0);
  SftSample& s = data.samples[0];
  ASSERT_EQ(s.mask.back(), 0);  // the trailing user text's last token
  std::vector<SftSample> user_changed = data.samples;
  user_changed[0].tokens.back() = (s.tokens.back() + 7) % 300;
  EXPECT_EQ(run(user_changed, g1), l0);
  EXPECT_EQ(g1, g0);
  // The assistant's last content token (before its EOS) does count.
  size_t k = s.mask.size() - 1;
  while (s.mask[k] == 0) --k;  // EOS
  std::vector<SftSample> answer_changed = data.samples;
  answer_changed[0].tokens[k - 1] = (s.tokens[k - 1] + 7) % 300;
  EXPECT_NE(run(answer_changed, g2), l0);
  fs::remove_all(d);
}

// Validation on records answered in words the training answers never use gets worse as training
// learns: with patience 2 the run stops early and OUT/final is the best-validation checkpoint;
// stopped midway and resumed, it stops at the same step with the same final.
TEST(Sft, PatienceStopsAndKeepsTheBestValidationCheckpoint) {
  const std::string a = tmpdir("pata"), b = tmpdir("patb");
  const std::string model = tiny_model(a);
  std::string chats, val;
  for (int i = 0; i < 8; ++i) {
    chats += record(i, 5);
    // Same prompts, answered in words the training answers never use.
    val += json{{"messages", {{{"role", "user"}, {"content", fmt::format("add {} and 5", i)}},
                              {{"role", "assistant"}, {"content", "And times? What is it? And times?"},
                               {"reasoning_content", "What is it? What is it? And times?"}}}}}.dump() + "\n";
  }
  const std::string cfg = R"(, "steps": 30, "eval_every": 1, "patience": 2)";
  RunOptions o;
  o.progress = false;
  std::vector<std::string> metrics;
  for (const std::string& d : {a, b}) {
    write_file_atomic(d + "/chats.jsonl", chats);
    write_file_atomic(d + "/val.jsonl", val);
    TrainConfig c = TrainConfig::load(sft_config(d, model, cfg, R"(, "val": "val.jsonl")"), TrainConfig::Kind::Sft);
    if (d == b) {
      o.stop_after = 2;
      run_sft(c, o);
      o.stop_after = -1;
      o.resume = true;
    }
    run_sft(c, o);
    metrics.push_back(c.out + "/metrics.jsonl");
  }
  const auto vals = metric_lines(metrics[0], "val");
  const auto stop = metric_lines(metrics[0], "stop");
  ASSERT_EQ(stop.size(), 1u);
  const int64_t stopped = stop[0]["step"], best_step = stop[0]["best_step"];
  EXPECT_LT(stopped, 30);
  ASSERT_EQ(int64_t(vals.size()), stopped);  // one evaluation per step
  double best = INFINITY;
  int64_t arg = 0;
  for (const json& v : vals)
    if (v["val_loss"].get<double>() < best) best = v["val_loss"], arg = v["step"];
  EXPECT_EQ(arg, best_step);
  EXPECT_EQ(stopped, best_step + 2);
  EXPECT_EQ(read_file(a + "/run/final/model.safetensors"), read_file(a + fmt::format("/run/best-{:06}/model.safetensors", best_step)));
  EXPECT_NE(read_file(a + "/run/final/model.safetensors"), read_file(a + fmt::format("/run/step-{:06}/model.safetensors", stopped)));
  // Resumed: the same evaluations, the same stop, the same final.
  const auto vb = metric_lines(metrics[1], "val");
  ASSERT_EQ(vb.size(), vals.size());
  for (size_t i = 0; i < vals.size(); ++i) EXPECT_EQ(vals[i]["val_loss"].dump(), vb[i]["val_loss"].dump());
  EXPECT_EQ(metric_lines(metrics[1], "stop")[0]["step"], stopped);
  EXPECT_EQ(read_file(a + "/run/final/model.safetensors"), read_file(b + "/run/final/model.safetensors"));
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(Sft, ConfigErrorsNameTheField) {
  const std::string d = tmpdir("cfg");
  auto err = [&](const std::string& text) {
    write_file_atomic(d + "/c.json", text);
    return error_of([&] { TrainConfig::load(d + "/c.json", TrainConfig::Kind::Sft); });
  };
  const std::string init = "\"init\": \"" + std::string(SEEK_FIXTURES) + "/models/v3-tiny\"";
  EXPECT_NE(err(R"({"data": {"sft": "a.jsonl"}, "out": "r"})").find("missing \"init\""), std::string::npos);
  EXPECT_NE(err("{" + init + R"(, "out": "r"})").find("missing \"data\""), std::string::npos);
  EXPECT_NE(err("{" + init + R"(, "data": {"files": ["a"]}, "out": "r"})").find("data: unknown field \"files\""), std::string::npos);
  EXPECT_NE(err("{" + init + R"(, "data": {"sft": 3}, "out": "r"})").find("field \"sft\" has the wrong type"), std::string::npos);
  EXPECT_NE(err("{" + init + R"(, "data": {"sft": "a"}, "train": {"steps": 3, "epochs": 1}, "out": "r"})")
                .find("give \"steps\" or \"epochs\", not both"), std::string::npos);
  EXPECT_NE(err("{" + init + R"(, "data": {"sft": "a"}, "train": {"patience": 2}, "out": "r"})")
                .find("\"patience\" needs validation records"), std::string::npos);
  EXPECT_NE(err("{" + init + R"(, "data": {"sft": "a"}, "train": {"epochs": 0}, "out": "r"})")
                .find("\"epochs\" must be positive"), std::string::npos);
  // "epochs" and "patience" are SFT's: `seek train` still refuses them.
  write_file_atomic(d + "/p.json", "{" + init + R"(, "data": {"tokens": "a"}, "train": {"epochs": 1}, "out": "r"})");
  EXPECT_NE(error_of([&] { TrainConfig::load(d + "/p.json"); }).find("unknown field \"epochs\""), std::string::npos);
  const TrainConfig c = TrainConfig::load(
      [&] { write_file_atomic(d + "/ok.json", "{" + init + R"(, "data": {"sft": ["a.jsonl", "/x/b.jsonl"], "val": "v.jsonl"}, "out": "r"})"); return d + "/ok.json"; }(),
      TrainConfig::Kind::Sft);
  EXPECT_EQ(c.epochs, 1);
  EXPECT_EQ(c.sft_files, (std::vector<std::string>{d + "/a.jsonl", "/x/b.jsonl"}));
  EXPECT_EQ(c.sft_val, d + "/v.jsonl");
  fs::remove_all(d);
}
