// Evaluation and rejection sampling: the Wilson interval, the held-out Countdown split, task
// files, and whole runs through the engine on a random model whose outputs are scripted, so
// which answers are right is known exactly.
#include "rl/eval.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/io.h"
#include "generate/test_model.h"
#include "rl/rewards.h"
#include "rl/sample.h"
#include "tokenizer/chat_template.h"

using namespace seek;
using namespace seek::rl;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + "." + std::to_string(::getpid())))
      .string();
}

}  // namespace

TEST(Wilson, MatchesHandComputedIntervals) {
  // 7/10: center (0.7 + 1.9208/10) / 1.38415 = 0.64449, half 0.24772.
  Interval a = wilson_interval(7, 10);
  EXPECT_NEAR(a.lo, 0.3968, 5e-4);
  EXPECT_NEAR(a.hi, 0.8922, 5e-4);
  // 0/10 and 10/10: not the empty Wald interval; mirror images of each other.
  Interval zero = wilson_interval(0, 10), all = wilson_interval(10, 10);
  EXPECT_DOUBLE_EQ(zero.lo, 0.0);
  EXPECT_NEAR(zero.hi, 0.2775, 5e-4);
  EXPECT_NEAR(all.lo, 0.7225, 5e-4);
  EXPECT_DOUBLE_EQ(all.hi, 1.0);
  // 50/100 is symmetric about 0.5: ±0.0962.
  Interval half = wilson_interval(50, 100);
  EXPECT_NEAR(half.lo, 0.4038, 5e-4);
  EXPECT_NEAR(half.hi, 0.5962, 5e-4);
  Interval none = wilson_interval(0, 0);
  EXPECT_EQ(none.lo, 0.0);
  EXPECT_EQ(none.hi, 1.0);
}

TEST(CountdownSplit, EvalAndTrainNeverShareAProblem) {
  const std::vector<EvalTask> eval = countdown_tasks(5, 40, CountdownSplit::Eval);
  const std::vector<EvalTask> train = countdown_tasks(5, 200, CountdownSplit::Train);
  ASSERT_EQ(eval.size(), 40u);
  std::set<std::string> seen;
  for (const EvalTask& t : eval) {
    EXPECT_EQ(countdown_split(CountdownProblem::from_json(t.record)), CountdownSplit::Eval);
    EXPECT_EQ(t.messages.size(), 1u);
    EXPECT_EQ(t.messages[0]["content"], t.prompt);
    seen.insert(t.prompt);
  }
  for (const EvalTask& t : train) EXPECT_FALSE(seen.count(t.prompt)) << t.prompt;
  // The split ignores the order the numbers are shown in.
  CountdownProblem p{{3, 7, 25}, 46, "25+3*7"}, q{{25, 3, 7}, 46, "25+3*7"};
  EXPECT_EQ(countdown_split(p), countdown_split(q));
  // Deterministic for a seed; another seed draws other problems.
  EXPECT_EQ(countdown_tasks(5, 40, CountdownSplit::Eval)[7].prompt, eval[7].prompt);
  EXPECT_NE(countdown_tasks(6, 1, CountdownSplit::Eval)[0].prompt, eval[0].prompt);
  // Roughly one problem in 8 is held out.
  int held = 0;
  CountdownGenerator gen(11);
  for (int i = 0; i < 800; ++i) held += countdown_split(gen.next()) == CountdownSplit::Eval;
  EXPECT_GT(held, 60);
  EXPECT_LT(held, 140);
}

TEST(Tasks, JsonlRecordsWithPromptOrMessages) {
  const std::string path = temp_path("seek_eval_tasks.jsonl");
  write_file_atomic(path,
                    "{\"prompt\": \"Use [1, 2] to make 3.\", \"numbers\": [1, 2], \"target\": 3}\n"
                    "\n"
                    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be exact.\"}, "
                    "{\"role\": \"user\", \"content\": \"What is 6*7?\"}], \"answer\": 42}\n");
  std::vector<EvalTask> t = load_tasks(path);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].prompt, "Use [1, 2] to make 3.");
  EXPECT_EQ(t[0].messages[0]["role"], "user");
  EXPECT_EQ(t[0].record["target"], 3);
  EXPECT_EQ(t[1].prompt, "What is 6*7?");
  EXPECT_EQ(t[1].messages.size(), 2u);
  EXPECT_EQ(t[1].record["answer"], 42);
  EXPECT_EQ(load_tasks(path, 1).size(), 1u);

  write_file_atomic(path, "{\"prompt\": \"a\"}\n{\"target\": 3}\n");
  EXPECT_NE(error_of([&] { load_tasks(path); }).find(path + ":2: a task needs exactly one of"),
            std::string::npos);
  write_file_atomic(path, "{\"prompt\": 5}\n");
  EXPECT_NE(error_of([&] { load_tasks(path); }).find("\"prompt\" must be a string"),
            std::string::npos);
  write_file_atomic(path, "{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}\n");
  EXPECT_NE(error_of([&] { load_tasks(path); }).find("must be the user's question"),
            std::string::npos);
  write_file_atomic(path, "{\"prompt\": \"a\"\n");
  EXPECT_NE(error_of([&] { load_tasks(path); }).find(path + ":1: invalid JSON"), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_NE(error_of([&] { load_tasks(path); }).find("cannot read " + path), std::string::npos);
}

// ---- whole runs on the random test model, outputs scripted ----

namespace {

struct Scripted {
  std::vector<EvalTask> tasks = countdown_tasks(3, 3, CountdownSplit::Eval);
  tokenizer::ChatTemplate tmpl = tokenizer::ChatTemplate::load(test::test_model_dir());
  std::unique_ptr<generate::Engine> engine;
  std::unique_ptr<Reward> reward = make_reward("countdown");

  Scripted() {
    generate::EngineOptions o;
    o.max_seqs = 2;
    o.cache_slots = 0;
    o.context = 512;
    o.max_queue = 2;  // fewer than the requests: run_tasks must keep within the queue
    o.kv_budget_bytes = int64_t(256) << 20;
    engine = std::make_unique<generate::Engine>(test::test_model(), &test::test_tokenizer(), o);
  }
  std::string solution(size_t task) const { return tasks[task].record["solution"]; }

  // What (task, sample) writes: sample 0 of each task and sample 1 of task 2 are correct and
  // well-formed; the others are wrong (task 1), unformatted (task 0) or a draft (task 2).
  std::string text(size_t task, int sample) const {
    const std::string good = "<think>\nLet me add.\n</think>\n<answer>" + solution(task) + "</answer>";
    if (sample == 0) return task == 1 ? "<think>\nhm\n</think>\n<answer>1+1</answer>" : good;
    if (task == 0) return "<answer>" + solution(task) + "</answer>";  // correct, no <think>
    if (task == 1) return "<think>\n" + solution(task) + "?\n</think>\nno idea";  // no answer
    return good;
  }
  RunOptions options(int samples) const {
    RunOptions ro;
    ro.sampling.temperature = 1.0f;  // scripted: the sampler has one finite logit either way
    ro.samples = samples;
    ro.max_tokens = 128;
    ro.processor = [this](size_t task, int sample) {
      return std::make_shared<generate::ScriptedLogits>(
          test::test_tokenizer().encode(text(task, sample), false), /*eos=*/1);
    };
    return ro;
  }
};

}  // namespace

TEST(EvalRun, ExactAccuracyOnScriptedAnswers) {
  Scripted s;
  std::vector<int64_t> progress;
  RunOptions ro = s.options(1);
  ro.progress = [&](int64_t done, int64_t total, int64_t correct) {
    EXPECT_EQ(total, 3);
    progress.push_back(done * 10 + correct);
  };
  const std::vector<Attempt> a = run_tasks(*s.engine, s.tmpl, s.tasks, *s.reward, ro);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(progress.size(), 3u);
  EXPECT_EQ(progress.back(), 32);  // 3 done, 2 correct
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(a[i].task, i);
    EXPECT_EQ(a[i].completion, s.text(i, 0));  // the raw output, EOS dropped
    EXPECT_EQ(a[i].finish, generate::FinishReason::Stop);
    EXPECT_TRUE(a[i].well_formed);
  }
  EXPECT_TRUE(a[0].score.correct);
  EXPECT_FALSE(a[1].score.correct);
  EXPECT_DOUBLE_EQ(a[1].score.reward, 0.1);  // the format tier
  EXPECT_TRUE(a[2].score.correct);
  EXPECT_EQ(a[0].reasoning, "Let me add.");
  EXPECT_EQ(a[0].answer, "<answer>" + s.solution(0) + "</answer>");

  const EvalSummary sum = summarize(a);
  EXPECT_EQ(sum.n, 3);
  EXPECT_EQ(sum.correct, 2);
  EXPECT_DOUBLE_EQ(sum.accuracy, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(sum.format_rate, 1.0);
  EXPECT_DOUBLE_EQ(sum.ci.lo, wilson_interval(2, 3).lo);
  const size_t tokens0 = test::test_tokenizer().encode(s.text(0, 0), false).size() + 1;  // + EOS
  EXPECT_EQ(a[0].completion_tokens, int64_t(tokens0));

  const nlohmann::json rec = attempt_json(s.tasks[1], a[1]);
  EXPECT_EQ(rec["prompt"], s.tasks[1].prompt);
  EXPECT_EQ(rec["completion"], s.text(1, 0));
  EXPECT_EQ(rec["correct"], false);
  EXPECT_EQ(rec["reward"], 0.1);
  EXPECT_EQ(rec["finish"], "stop");
  EXPECT_FALSE(rec["reason"].get<std::string>().empty());
}

TEST(EvalRun, ABrokenRecordIsAnErrorNamingTheField) {
  Scripted s;
  s.tasks[1].record.erase("target");
  EXPECT_NE(error_of([&] { run_tasks(*s.engine, s.tmpl, s.tasks, *s.reward, s.options(1)); })
                .find("target"),
            std::string::npos);
  // The engine is still usable afterwards.
  s.tasks[1].record = countdown_tasks(3, 3, CountdownSplit::Eval)[1].record;
  EXPECT_EQ(run_tasks(*s.engine, s.tmpl, s.tasks, *s.reward, s.options(1)).size(), 3u);
}

TEST(SampleRun, KeepsExactlyTheCorrectWellFormedTraces) {
  Scripted s;
  const std::vector<Attempt> a = run_tasks(*s.engine, s.tmpl, s.tasks, *s.reward, s.options(2));
  ASSERT_EQ(a.size(), 6u);
  SampleStats st;
  const std::vector<nlohmann::json> kept = keep_verified(s.tasks, a, &st);
  EXPECT_EQ(st.total, 6);
  EXPECT_EQ(st.correct, 4);  // (0,0) (0,1) (2,0) (2,1); (0,1) has no <think>
  EXPECT_EQ(st.kept, 3);
  ASSERT_EQ(kept.size(), 3u);
  const size_t from_task[] = {0, 2, 2};
  for (size_t i = 0; i < kept.size(); ++i) {
    const nlohmann::json& m = kept[i]["messages"];
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0], (nlohmann::json{{"role", "user"}, {"content", s.tasks[from_task[i]].prompt}}));
    EXPECT_EQ(m[1]["role"], "assistant");
    EXPECT_EQ(m[1]["content"], "<answer>" + s.solution(from_task[i]) + "</answer>");
    EXPECT_EQ(m[1]["reasoning_content"], "Let me add.");
  }

  const std::string path = temp_path("seek_sft.jsonl");
  write_jsonl(path, kept);
  const std::string data = read_file(path);
  std::vector<nlohmann::json> back;
  for (size_t at = 0, nl; (nl = data.find('\n', at)) != std::string::npos; at = nl + 1)
    back.push_back(parse_json(data.substr(at, nl - at), path));
  EXPECT_EQ(back, kept);
  EXPECT_EQ(data.back(), '\n');
  std::filesystem::remove(path);
}

// R1 templates open <think> in the prompt: the model's output starts inside the thinking. The
// reward sees the block whole, and the SFT record gets the thinking split off.
TEST(EvalRun, APromptThatOpensThinking) {
  Scripted s;
  s.tmpl = tokenizer::ChatTemplate::from_source(
      "{{ bos_token }}{% for m in messages %}<｜User｜>{{ m['content'] }}{% endfor %}"
      "<｜Assistant｜><think>\n",
      "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  const ChatPrompt p = render_prompt(s.tmpl, test::test_tokenizer(), s.tasks[0].messages);
  EXPECT_TRUE(p.starts_in_thinking);
  RunOptions ro = s.options(1);
  const std::string body = "Let me add.\n</think>\n<answer>" + s.solution(0) + "</answer>";
  ro.processor = [&](size_t, int) {
    return std::make_shared<generate::ScriptedLogits>(test::test_tokenizer().encode(body, false), 1);
  };
  const std::vector<Attempt> a = run_tasks(*s.engine, s.tmpl, s.tasks, *s.reward, ro);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].completion, "<think>\n" + body);
  EXPECT_TRUE(a[0].well_formed);
  EXPECT_TRUE(a[0].score.correct) << a[0].score.reason;
  EXPECT_FALSE(a[1].score.correct);  // task 0's answer
  const nlohmann::json rec = sft_record(s.tasks[0], a[0]);
  EXPECT_EQ(rec["messages"][1]["reasoning_content"], "Let me add.");
  EXPECT_EQ(rec["messages"][1]["content"], "<answer>" + s.solution(0) + "</answer>");
}

TEST(EvalRun, BadSettingsAreErrors) {
  Scripted s;
  RunOptions ro = s.options(0);
  EXPECT_NE(error_of([&] { run_tasks(*s.engine, s.tmpl, s.tasks, *s.reward, ro); })
                .find("at least 1"),
            std::string::npos);
  ro = s.options(1);
  ro.sampling.top_p = 0.0f;
  EXPECT_NE(error_of([&] { run_tasks(*s.engine, s.tmpl, s.tasks, *s.reward, ro); })
                .find("top_p"),
            std::string::npos);
}
