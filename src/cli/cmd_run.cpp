// seek run: one prompt → streamed answer. seek chat: interactive multi-turn conversation.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/common.h"
#include "cli/generation.h"
#include "core/error.h"
#include "generate/reasoning.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace seek::cli {

namespace {

struct Session {
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::optional<tokenizer::ChatTemplate> tmpl;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<generate::Engine> engine;  // one sequence at a time
};

// Tokenizer and template first: a missing file should not cost a model load.
Session open_session(const GenFlags& f, bool with_template) {
  Session s;
  check_model_dir(f.model_dir);
  s.tok = load_tokenizer(f.model_dir);
  if (with_template) {
    try {
      s.tmpl = tokenizer::ChatTemplate::load(f.model_dir);
    } catch (const Error& e) {
      fail("{} (without a chat template, `seek run --raw` still works)", e.what());
    }
  }
  s.model = load_model(f.model_dir, f.load);
  s.engine = std::make_unique<generate::Engine>(*s.model, s.tok.get(), make_engine_options(f));
  return s;
}

// Runs one generation with the display and Ctrl-C wiring; returns the result.
generate::EngineResult stream(Session& s, generate::EngineRequest req, const GenFlags& f) {
  const int64_t limit = s.engine->context();
  const int64_t model_max = s.model->config().max_position_embeddings;
  if (int64_t(req.prompt.size()) >= limit)
    fail("prompt has {} tokens, context limit is {}{}", req.prompt.size(), limit,
         limit < model_max ? fmt::format(": raise it with --ctx (the model allows {})", model_max)
                           : std::string(" (the model's maximum)"));
  StreamPrinter printer(!f.hide_thinking);
  // The engine thread prints; this one waits for the result.
  generate::EngineCallbacks cb;
  cb.on_text = [&](std::string_view text, bool reasoning) { printer.text(text, reasoning); };
  req.cancel = cancel_flag();
  set_generating(true);
  generate::EngineResult r;
  try {
    r = s.engine->generate(std::move(req), std::move(cb));
  } catch (...) {
    set_generating(false);
    printer.end();
    throw;
  }
  set_generating(false);
  printer.end();
  if (r.finish == generate::FinishReason::Error) fail("{}", r.error);
  print_stats(r, limit, model_max);
  return r;
}

nlohmann::json message(const char* role, const std::string& content) {
  return {{"role", role}, {"content", content}};
}

}  // namespace

// ---- run ----

Command add_run(CLI::App& app) {
  auto f = std::make_shared<GenFlags>();
  auto prompt = std::make_shared<std::string>();
  auto raw = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("run", "Generate an answer to one prompt, streamed to stdout");
  add_gen_flags(cmd, *f);
  CLI::Option* p_opt = cmd->add_option("-p,--prompt", *prompt, "The prompt; \"-\" reads it from stdin");
  CLI::Option* pos_opt =
      cmd->add_option("PROMPT", *prompt, "The prompt (instead of -p)")->excludes(p_opt);
  cmd->add_flag("--raw", *raw, "Feed the prompt as is (BOS + text), without the chat template");

  return {cmd, [f, prompt, raw, p_opt, pos_opt]() -> int {
            install_sigint_handler();
            if (p_opt->count() + pos_opt->count() == 0)
              fail("no prompt: seek run MODEL_DIR \"PROMPT\" (or -p TEXT; -p - reads stdin)");
            std::string text = *prompt == "-" ? read_stdin() : *prompt;
            generate::EngineRequest req = make_request(*f);
            Session s = open_session(*f, /*with_template=*/!*raw);

            if (*raw) {
              req.prompt = s.tok->encode(text, /*add_special_tokens=*/true);
              req.starts_in_thinking = generate::prompt_opens_thinking(text);
            } else {
              nlohmann::json messages = nlohmann::json::array();
              if (!f->system.empty()) messages.push_back(message("system", f->system));
              messages.push_back(message("user", text));
              const std::string rendered = s.tmpl->render(messages, true);
              req.prompt = s.tok->encode(rendered, /*add_special_tokens=*/false);
              req.starts_in_thinking = generate::prompt_opens_thinking(rendered);
            }
            generate::EngineResult r = stream(s, std::move(req), *f);
            return r.finish == generate::FinishReason::Cancelled ? 130 : 0;
          }};
}

// ---- chat ----

Command add_chat(CLI::App& app) {
  auto f = std::make_shared<GenFlags>();
  CLI::App* cmd = app.add_subcommand(
      "chat", "Interactive conversation (/reset clears it, /exit or Ctrl-D quits; end a line "
              "with \\ to continue on the next)");
  add_gen_flags(cmd, *f);

  return {cmd, [f]() -> int {
            install_sigint_handler();
            const generate::EngineRequest params = make_request(*f);
            const uint64_t seed = params.sampling.seed;
            Session s = open_session(*f, /*with_template=*/true);
            const bool interactive = stdin_is_tty();
            if (interactive)
              write_stderr("seek chat: /reset clears the conversation, /exit or Ctrl-D quits, "
                           "a line ending in \\ continues; Ctrl-C stops an answer\n");

            nlohmann::json history = nlohmann::json::array();
            auto reset = [&] {
              history = nlohmann::json::array();
              if (!f->system.empty()) history.push_back(message("system", f->system));
            };
            reset();
            for (uint64_t turn = 0;; ++turn) {
              // Read one user message (lines ending in '\' continue it).
              std::string input, line;
              bool eof = false;
              for (;;) {
                if (interactive) write_stdout(input.empty() ? "> " : "… ");
                if (!std::getline(std::cin, line)) {
                  eof = true;
                  break;
                }
                if (!line.empty() && line.back() == '\\') {
                  line.pop_back();
                  input += line + "\n";
                  continue;
                }
                input += line;
                break;
              }
              if (eof && input.empty()) {
                if (interactive) write_stdout("\n");
                return 0;
              }
              if (input == "/exit" || input == "/quit") return 0;
              if (input == "/reset") {
                reset();
                s.engine->forget_prefixes();
                write_stderr("seek: conversation cleared\n");
                continue;
              }
              if (input.find_first_not_of(" \t\r\n") == std::string::npos) {
                if (eof) return 0;
                continue;
              }

              history.push_back(message("user", input));
              const std::string rendered = s.tmpl->render(history, true);
              generate::EngineRequest req = params;
              req.prompt = s.tok->encode(rendered, /*add_special_tokens=*/false);
              req.starts_in_thinking = generate::prompt_opens_thinking(rendered);
              req.sampling.seed = seed + turn;
              generate::EngineResult r;
              try {
                r = stream(s, std::move(req), *f);
              } catch (const Error& e) {  // e.g. the conversation outgrew the context
                history.erase(history.end() - 1);
                write_stderr(fmt::format("seek: error: {} (/reset starts a new conversation)\n",
                                         e.what()));
                if (eof) return 1;
                continue;
              }
              // DeepSeek drops earlier turns' reasoning from the conversation it sends back.
              history.push_back(message("assistant", r.text));
              if (eof) return 0;
            }
          }};
}

}  // namespace seek::cli
