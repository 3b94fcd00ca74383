// seek simulate: a training step of a DeepSeek model on a GPU cluster, on paper (dist/simulate.h):
// per-rank memory, pipeline bubble, expert all-to-all volume and step time for 1F1B and DualPipe.
#include "cli/common.h"
#include "dist/simulate.h"

namespace seek::cli {

Command add_simulate(CLI::App& app) {
  struct Flags {
    std::string config, hardware, schedule;
    bool describe = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("simulate", "Simulate a training step on a GPU cluster: memory, pipeline bubble, all-to-all, step time");
  cmd->add_option("-c,--config", f->config, "Training layout (JSON: model or init, train, parallel, simulate; see configs/simulate/)")->required();
  cmd->add_option("--hardware", f->hardware, "Hardware (JSON; see configs/simulate/h800.json)")->required();
  cmd->add_option("--schedule", f->schedule, "1f1b or dualpipe (default: both, or the config's)");
  cmd->add_flag("--describe", f->describe, "Also print each pipeline rank's ops (of a 2-micro-batch-per-stage step)");
  cmd->footer("Example (DeepSeek-V3 on 2048 H800):\n"
              "  seek simulate --config configs/simulate/deepseek-v3.json --hardware configs/simulate/h800.json");
  return {cmd, [f] {
            const dist::SimConfig c = dist::SimConfig::load(f->config);
            const dist::SimHardware h = dist::SimHardware::load(f->hardware);
            std::vector<std::string> names = f->schedule.empty() ? c.schedules : std::vector<std::string>{f->schedule};
            std::vector<dist::SimResult> results;
            for (const std::string& s : names) results.push_back(dist::simulate_training(c, h, s));
            std::fputs(dist::simulation_report(c, h, results).c_str(), stdout);
            if (f->describe)
              for (const std::string& s : names)
                std::printf("\n%s, %lld stages:\n%s", s.c_str(), (long long)c.pipeline,
                            dist::describe(dist::make_schedule(s, int(c.pipeline), int(2 * c.pipeline))).c_str());
            return 0;
          }};
}

}  // namespace seek::cli
