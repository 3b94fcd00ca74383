#include "rl/eval.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>

#include "core/error.h"
#include "core/io.h"
#include "generate/reasoning.h"
#include "rl/answer_format.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace seek::rl {

// ---- tasks ----

EvalTask task_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail("{}: a task must be a JSON object, got {}", source, j.dump());
  EvalTask t;
  t.record = j;
  const bool has_prompt = j.contains("prompt"), has_messages = j.contains("messages");
  if (has_prompt == has_messages)
    fail("{}: a task needs exactly one of \"prompt\" (a string) and \"messages\" (a list)", source);
  if (has_prompt) {
    t.prompt = json_get<std::string>(j, "prompt", source);
    t.messages = nlohmann::json::array({{{"role", "user"}, {"content", t.prompt}}});
    return t;
  }
  const nlohmann::json& m = j["messages"];
  if (!m.is_array() || m.empty())
    fail("{}: field \"messages\" must be a non-empty list of {{role, content}}", source);
  for (const auto& msg : m)
    if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string() ||
        !msg.contains("content") || !msg["content"].is_string())
      fail("{}: every entry of \"messages\" needs string \"role\" and \"content\", got {}", source,
           msg.dump());
  if (m.back()["role"] != "user")
    fail("{}: the last of \"messages\" must be the user's question, got role {}", source,
         m.back()["role"].dump());
  t.messages = m;
  t.prompt = m.back()["content"].get<std::string>();
  return t;
}

std::vector<EvalTask> load_tasks(const std::string& path, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}: no such file (give --task countdown or a JSONL file)", path);
  std::vector<EvalTask> tasks;
  std::string line;
  for (int64_t n = 1; (limit < 0 || int64_t(tasks.size()) < limit) && std::getline(in, line);
       ++n) {
    if (trim(line).empty()) continue;
    const std::string where = fmt::format("{}:{}", path, n);
    tasks.push_back(task_from_json(parse_json(line, where), where));
  }
  if (tasks.empty()) fail("{}: no tasks (one JSON object per line)", path);
  return tasks;
}

CountdownSplit countdown_split(const CountdownProblem& p) {
  std::vector<int> numbers = p.numbers;
  std::sort(numbers.begin(), numbers.end());
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the values' bytes, little-endian
  auto mix = [&](int64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= uint64_t(v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix(int64_t(numbers.size()));
  for (int v : numbers) mix(v);
  mix(p.target);
  return h % 8 == 0 ? CountdownSplit::Eval : CountdownSplit::Train;
}

std::vector<EvalTask> countdown_tasks(uint64_t seed, int64_t n, CountdownSplit split) {
  CountdownGenerator gen(seed);
  std::vector<EvalTask> tasks;
  while (int64_t(tasks.size()) < n) {
    CountdownProblem p = gen.next();
    if (countdown_split(p) != split) continue;
    EvalTask t;
    t.prompt = countdown_prompt(p.numbers, p.target);
    t.messages = nlohmann::json::array({{{"role", "user"}, {"content", t.prompt}}});
    t.record = p.to_json();
    tasks.push_back(std::move(t));
  }
  return tasks;
}

ChatPrompt render_prompt(const tokenizer::ChatTemplate& tmpl, const tokenizer::Tokenizer& tok,
                         const nlohmann::json& messages) {
  const std::string rendered = tmpl.render(messages, /*add_generation_prompt=*/true);
  return {tok.encode(rendered, /*add_special_tokens=*/false),
          generate::prompt_opens_thinking(rendered)};
}

// ---- generation ----

namespace {

// What the engine thread hands back; shared so that requests still running when run_tasks
// unwinds (an error) never touch a dead frame.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<size_t, generate::EngineResult>> done;
};

}  // namespace

std::vector<Attempt> run_tasks(generate::Engine& engine, const tokenizer::ChatTemplate& tmpl,
                               std::span<const EvalTask> tasks, const Reward& reward,
                               const RunOptions& options) {
  const tokenizer::Tokenizer* tok = engine.tokenizer();
  if (!tok) fail("evaluation needs an engine with a tokenizer");
  if (options.samples < 1) fail("samples per task must be at least 1, got {}", options.samples);
  options.sampling.validate();

  std::vector<ChatPrompt> prompts;
  prompts.reserve(tasks.size());
  for (const EvalTask& t : tasks) prompts.push_back(render_prompt(tmpl, *tok, t.messages));

  const size_t samples = size_t(options.samples), total = tasks.size() * samples;
  std::vector<Attempt> attempts(total);
  auto inbox = std::make_shared<Inbox>();
  std::vector<std::shared_ptr<generate::RequestHandle>> handles;
  // Everything in flight fits the queue: waiting requests never exceed max_queue.
  const size_t window = size_t(std::max(1, engine.stats().max_queue));
  size_t submitted = 0, finished = 0;
  int64_t correct = 0;
  try {
    while (finished < total) {
      for (; submitted < total && submitted - finished < window; ++submitted) {
        const size_t task = submitted / samples;
        const int sample = int(submitted % samples);
        generate::EngineRequest req;
        req.prompt = prompts[task].ids;
        req.starts_in_thinking = prompts[task].starts_in_thinking;
        req.reasoning = true;
        req.sampling = options.sampling;
        req.sampling.seed = options.sampling.seed + submitted;
        req.max_total_tokens = options.max_tokens;
        if (options.processor) req.processor = options.processor(task, sample);
        generate::EngineCallbacks cb;
        cb.on_done = [inbox, i = submitted](const generate::EngineResult& r) {
          std::lock_guard lock(inbox->mu);
          inbox->done.emplace_back(i, r);
          inbox->cv.notify_one();
        };
        handles.push_back(engine.submit(std::move(req), std::move(cb)));
      }
      std::pair<size_t, generate::EngineResult> item;
      {
        std::unique_lock lock(inbox->mu);
        inbox->cv.wait(lock, [&] { return !inbox->done.empty(); });
        item = std::move(inbox->done.front());
        inbox->done.pop_front();
      }
      const auto& [i, r] = item;
      ++finished;
      if (r.finish == generate::FinishReason::Error || r.finish == generate::FinishReason::Timeout ||
          r.finish == generate::FinishReason::Shutdown || r.finish == generate::FinishReason::Cancelled)
        fail("generation of task {} failed ({}){}", i / samples,
             generate::finish_reason_name(r.finish), r.error.empty() ? "" : ": " + r.error);
      Attempt& a = attempts[i];
      a.task = i / samples;
      a.sample = int(i % samples);
      // The raw output with its tags (the splitter drops them and trims newlines); EOS is a
      // special token and is skipped.
      a.completion = (prompts[a.task].starts_in_thinking ? "<think>\n" : "") +
                     tok->decode(r.tokens, /*skip_special_tokens=*/true);
      a.reasoning = r.reasoning;
      a.answer = r.text;
      a.completion_tokens = r.completion_tokens;
      a.finish = r.finish;
      const EvalTask& t = tasks[a.task];
      a.score = reward.score({t.prompt, a.completion, t.record});
      a.well_formed = check_format(t.prompt, a.completion).ok;
      correct += a.score.correct;
      if (options.progress) options.progress(int64_t(finished), int64_t(total), correct);
    }
  } catch (...) {
    for (auto& h : handles) h->cancel();
    throw;
  }
  return attempts;
}

// ---- summary ----

Interval wilson_interval(int64_t k, int64_t n, double z) {
  if (n <= 0) return {};
  const double nn = double(n), p = double(k) / nn, z2 = z * z;
  const double denom = 1.0 + z2 / nn;
  const double center = (p + z2 / (2.0 * nn)) / denom;
  const double half = z / denom * std::sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

EvalSummary summarize(std::span<const Attempt> attempts) {
  EvalSummary s;
  s.n = int64_t(attempts.size());
  double tokens = 0.0;
  for (const Attempt& a : attempts) {
    s.correct += a.score.correct;
    s.well_formed += a.well_formed;
    tokens += double(a.completion_tokens);
  }
  if (s.n == 0) return s;
  s.accuracy = double(s.correct) / double(s.n);
  s.ci = wilson_interval(s.correct, s.n);
  s.format_rate = double(s.well_formed) / double(s.n);
  s.mean_completion_tokens = tokens / double(s.n);
  return s;
}

nlohmann::json attempt_json(const EvalTask& task, const Attempt& a) {
  return {{"task", a.task},
          {"sample", a.sample},
          {"prompt", task.prompt},
          {"completion", a.completion},
          {"reward", a.score.reward},
          {"correct", a.score.correct},
          {"reason", a.score.reason},
          {"format", a.well_formed},
          {"tokens", a.completion_tokens},
          {"finish", generate::finish_reason_name(a.finish)},
          {"record", task.record}};
}

}  // namespace seek::rl
