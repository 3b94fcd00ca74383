#include "rl/sample.h"

#include "core/io.h"

namespace seek::rl {

nlohmann::json sft_record(const EvalTask& task, const Attempt& a) {
  nlohmann::json messages = task.messages;
  messages.push_back(
      {{"role", "assistant"}, {"content", a.answer}, {"reasoning_content", a.reasoning}});
  return {{"messages", std::move(messages)}};
}

std::vector<nlohmann::json> keep_verified(std::span<const EvalTask> tasks,
                                          std::span<const Attempt> attempts, SampleStats* stats) {
  std::vector<nlohmann::json> out;
  SampleStats s;
  for (const Attempt& a : attempts) {
    ++s.total;
    s.correct += a.score.correct;
    if (!a.score.correct || !a.well_formed) continue;
    ++s.kept;
    out.push_back(sft_record(tasks[a.task], a));
  }
  if (stats) *stats = s;
  return out;
}

void write_jsonl(const std::string& path, std::span<const nlohmann::json> records) {
  std::string data;
  for (const nlohmann::json& r : records) data += r.dump() + "\n";
  write_file_atomic(path, data);
}

}  // namespace seek::rl
