#include "rl/code_reward.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace seek::rl {
namespace {

struct Test {
  std::string input, output;
};

struct CodeTask {
  std::vector<Test> tests;
  SandboxLimits limits;
};

CodeTask parse_task(const nlohmann::json& task, const SandboxLimits& defaults) {
  if (!task.is_object()) fail("code task: the task record must be an object");
  auto it = task.find("tests");
  if (it == task.end() || !it->is_array() || it->empty())
    fail("code task: 'tests' must be a non-empty array of {{input, output}}");
  CodeTask t;
  t.limits = defaults;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& e = (*it)[i];
    for (const char* field : {"input", "output"})
      if (!e.is_object() || !e.contains(field) || !e[field].is_string())
        fail("code task: tests[{}].{} must be a string", i, field);
    t.tests.push_back({e["input"].get<std::string>(), e["output"].get<std::string>()});
  }
  if (auto ts = task.find("timeout_s"); ts != task.end()) {
    if (!ts->is_number() || ts->get<double>() <= 0 || ts->get<double>() > 3600)
      fail("code task: 'timeout_s' must be a number of seconds in (0, 3600]");
    // The wall clock is the task's budget; CPU time cannot exceed it (rounded up: whole seconds).
    t.limits.wall_seconds = ts->get<double>();
    t.limits.cpu_seconds = static_cast<int>(std::ceil(ts->get<double>()));
  }
  if (auto mb = task.find("memory_mb"); mb != task.end()) {
    if (!mb->is_number() || mb->get<double>() < 16 || mb->get<double>() > 65536)
      fail("code task: 'memory_mb' must be a number in [16, 65536]");
    t.limits.memory_bytes = static_cast<std::size_t>(mb->get<double>()) << 20;
  }
  return t;
}

// For reasons: short, one line, newlines shown as \n.
std::string excerpt(std::string_view s, std::size_t max = 40) {
  std::string out;
  for (char c : s.substr(0, max)) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  if (s.size() > max) out += "...";
  return out;
}

std::string last_line(std::string_view s) {
  std::string n = normalize_output(s);
  std::size_t nl = n.rfind('\n');
  return excerpt(nl == std::string::npos ? n : std::string_view(n).substr(nl + 1), 120);
}

bool is_python_tag(std::string_view info) {
  while (!info.empty() && (info.back() == ' ' || info.back() == '\t' || info.back() == '\r'))
    info.remove_suffix(1);
  while (!info.empty() && (info.front() == ' ' || info.front() == '\t')) info.remove_prefix(1);
  std::string lower(info);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "python" || lower == "py" || lower == "python3";
}

}  // namespace

std::optional<std::string> extract_program(std::string_view completion) {
  if (std::size_t think = completion.rfind("</think>"); think != std::string_view::npos)
    completion.remove_prefix(think + 8);
  std::optional<std::string> last;
  std::size_t pos = 0;
  while ((pos = completion.find("```", pos)) != std::string_view::npos) {
    std::size_t eol = completion.find('\n', pos);
    if (eol == std::string_view::npos) break;
    std::size_t close = completion.find("```", eol + 1);
    if (close == std::string_view::npos) break;  // unterminated (a truncated completion)
    if (is_python_tag(completion.substr(pos + 3, eol - pos - 3)))
      last = std::string(completion.substr(eol + 1, close - eol - 1));
    pos = close + 3;
  }
  return last;
}

std::string normalize_output(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    while (!line.empty() && std::string_view(" \t\r\v\f").find(line.back()) != std::string_view::npos)
      line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i) out += '\n';
    out += lines[i];
  }
  return out;
}

RewardResult CodeReward::score(const RewardInput& in) const {
  const CodeTask task = parse_task(in.task, options_.limits);
  RewardResult r;
  std::optional<std::string> program = extract_program(in.completion);
  if (!program) {
    r.reason = "no ```python block";
    return r;
  }
  SandboxSpec spec;
  spec.argv = {options_.python, "-I", "-B", "/work/main.py"};
  spec.files = {{"main.py", *program}};
  spec.limits = task.limits;
  spec.temp_root = options_.temp_root;
  std::size_t passed = 0;
  std::string first_failure;
  for (std::size_t k = 0; k < task.tests.size(); ++k) {
    spec.stdin_data = task.tests[k].input;
    SandboxResult run = run_sandboxed(spec);
    std::string failure;
    if (run.status != SandboxStatus::kExited) {
      failure = run.summary(spec.limits);
    } else if (run.exit_code != 0) {
      failure = run.summary(spec.limits);
      if (std::string tail = last_line(run.err); !tail.empty()) failure += " (" + tail + ")";
    } else if (run.out_truncated) {
      failure = fmt::format("output longer than {} bytes", spec.limits.output_bytes);
    } else {
      std::string got = normalize_output(run.out), want = normalize_output(task.tests[k].output);
      if (got == want) {
        ++passed;
        continue;
      }
      failure = fmt::format("wrong output (expected \"{}\", got \"{}\")", excerpt(want),
                            excerpt(got));
    }
    if (first_failure.empty()) first_failure = fmt::format("test {}: {}", k + 1, failure);
    // A sandbox that cannot be set up fails every test the same way: stop (fail closed).
    if (options_.all_pass || run.status == SandboxStatus::kSetupFailed) break;
  }
  const std::size_t n = task.tests.size();
  r.correct = passed == n;
  r.reward = options_.all_pass ? (r.correct ? 1.0 : 0.0)
                               : static_cast<double>(passed) / static_cast<double>(n);
  if (r.correct)
    r.reason = fmt::format("passed {}/{} tests", passed, n);
  else if (options_.all_pass)
    r.reason = first_failure;
  else
    r.reason = fmt::format("passed {}/{} tests; {}", passed, n, first_failure);
  return r;
}

}  // namespace seek::rl
