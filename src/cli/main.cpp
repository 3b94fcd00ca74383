// seek: run, chat with, inspect and build DeepSeek models on the CPU.
// Every failure (bad flags, seek::Error, out of memory) ends as one "seek: error: ..." line on
// stderr and exit code 1; help and --version exit 0; an interrupted generation exits 130.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <vector>

#include "cli/common.h"
#include "core/error.h"
#include "dist/comm.h"

int main(int argc, char** argv) {
  using namespace seek::cli;
  CLI::App app{"seek: DeepSeek-V2/V3/R1 inference on the CPU"};
  app.name("seek");
  app.require_subcommand(1);
  app.set_version_flag("--version", "seek 0.1");

  std::vector<Command> commands;
  try {
    // Run and serve; train and post-train (R1: sft, grpo, rm, sample, eval); inspect; make.
    commands = {add_run(app),       add_chat(app),     add_serve(app),     add_train(app),
                add_sft(app),       add_grpo(app),     add_rm(app),        add_sample(app),
                add_eval(app),      add_info(app),     add_tokenize(app),  add_template(app),
                add_logits(app),    add_make_model(app), add_make_data(app), add_export(app),
                add_quantize(app),  add_perplexity(app), add_simulate(app)};
    // Set after the subcommands exist, so that they do not inherit the footer.
    app.footer("\nRun `seek COMMAND --help` for the options of a command.\n");
    if (argc > 1 && argv[1][0] != '-') {  // CLI11 would only say "A subcommand is required"
      std::string names;
      bool known = false;
      for (const Command& c : commands) {
        known = known || c.app->check_name(argv[1]);
        names += (names.empty() ? "" : ", ") + c.app->get_name();
      }
      if (!known) {
        std::fprintf(stderr, "seek: error: unknown command \"%s\" (commands: %s)\n", argv[1],
                     names.c_str());
        return 1;
      }
    }
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "seek: error: %s\nRun with --help for usage.\n", e.what());
    return 1;
  }

  try {
    for (const Command& c : commands)
      if (c.app->parsed()) return c.run();
    return 1;  // unreachable: require_subcommand(1)
  } catch (const seek::Error& e) {
    std::fprintf(stderr, "seek: error: %s\n", e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "seek: error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seek: error: %s\n", e.what());
  }
  // Under mpirun: end the other ranks now rather than leave them waiting in a collective.
  if (seek::dist::Comm::started() && seek::dist::Comm::world().size() > 1) {
    std::fflush(stderr);
    seek::dist::Comm::world().abort(1);
  }
  return 1;
}
