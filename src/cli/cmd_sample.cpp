// seek sample: rejection sampling. K completions per problem; the verified-correct, well-formed
// ones become SFT conversations (the thinking in reasoning_content).
//
// Temperature 1.0 by default (not R1's recommended 0.6 for answering): the traces should be
// draws from the model's own distribution, as GRPO's rollouts are, so that fine-tuning on the
// kept ones sharpens that distribution toward correct answers without first narrowing it; the
// verifier, not the temperature, removes the bad samples. Countdown problems come from the
// training split (rl/eval.h), never the held-out one `seek eval` scores.
#include "cli/rl_tasks.h"
#include "core/error.h"
#include "rl/sample.h"

namespace seek::cli {

Command add_sample(CLI::App& app) {
  auto f = std::make_shared<TaskFlags>();
  f->temperature = 1.0f;
  auto samples = std::make_shared<int>(4);
  CLI::App* cmd = app.add_subcommand(
      "sample", "Rejection sampling: K completions per problem, the correct and well-formed ones "
                "written as SFT records (JSONL)");
  add_task_flags(cmd, *f, "sample", "--max-tokens");
  cmd->add_option("-n,--samples", *samples, "Completions per problem (K)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--out", f->out, "The SFT file, written atomically (default: stdout)");

  return {cmd, [f, samples]() -> int {
            const std::vector<rl::EvalTask> tasks =
                load_task_list(*f, rl::CountdownSplit::Train, 100);
            const std::unique_ptr<rl::Reward> reward = make_task_reward(*f);
            const std::vector<rl::Attempt> attempts =
                run_task_list(*f, tasks, *reward, *samples, "sample");
            rl::SampleStats st;
            const std::vector<nlohmann::json> kept = rl::keep_verified(tasks, attempts, &st);
            if (f->out.empty()) {
              for (const nlohmann::json& r : kept) write_stdout(r.dump() + "\n");
            } else {
              rl::write_jsonl(f->out, kept);
            }
            write_stderr(fmt::format("kept {}/{} completions ({} correct, {} of them well-formed) "
                                     "from {} problems{}\n",
                                     st.kept, st.total, st.correct, st.kept, tasks.size(),
                                     f->out.empty() ? "" : " -> " + f->out));
            return 0;
          }};
}

}  // namespace seek::cli
