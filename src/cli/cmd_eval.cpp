// seek eval: accuracy of a model on verifiable tasks, with its 95% Wilson score interval.
#include "cli/rl_tasks.h"
#include "core/error.h"
#include "core/io.h"

namespace seek::cli {

Command add_eval(CLI::App& app) {
  auto f = std::make_shared<TaskFlags>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Accuracy on Countdown (held-out problems) or a JSONL task file, checked by a "
              "reward, with its 95% confidence interval");
  add_task_flags(cmd, *f, "evaluate", "-n,--max-tokens");
  cmd->add_option("--out", f->out, "Write one JSON record per problem (prompt, completion, reward, "
                                   "correct, reason, ...) to this JSONL file");

  return {cmd, [f]() -> int {
            const std::vector<rl::EvalTask> tasks =
                load_task_list(*f, rl::CountdownSplit::Eval, 100);
            const std::unique_ptr<rl::Reward> reward = make_task_reward(*f);
            const std::vector<rl::Attempt> attempts = run_task_list(*f, tasks, *reward, 1, "eval");
            if (!f->out.empty()) {
              std::string data;
              for (const rl::Attempt& a : attempts)
                data += rl::attempt_json(tasks[a.task], a).dump() + "\n";
              write_file_atomic(f->out, data);
            }
            const rl::EvalSummary s = rl::summarize(attempts);
            write_stdout(fmt::format(
                "task {}{}: {} problems, reward {}, {}\n"
                "accuracy: {:.1f}% ({}/{}), 95% CI [{:.1f}%, {:.1f}%] (Wilson score interval)\n"
                "format: {:.1f}% ({}/{} well-formed)\n"
                "mean completion: {:.1f} tokens\n",
                f->task, f->task == "countdown" ? fmt::format(" (seed {}, held-out split)", f->seed)
                                                : std::string(),
                s.n, reward->name(),
                f->temperature < 1e-5f ? std::string("greedy")
                                       : fmt::format("temperature {}", f->temperature),
                100.0 * s.accuracy, s.correct, s.n, 100.0 * s.ci.lo, 100.0 * s.ci.hi,
                100.0 * s.format_rate, s.well_formed, s.n, s.mean_completion_tokens));
            return 0;
          }};
}

}  // namespace seek::cli
