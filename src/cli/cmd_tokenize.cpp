// seek tokenize / seek template: the tokenizer and chat template as filters on stdin → stdout.
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/io.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace seek::cli {

Command add_tokenize(CLI::App& app) {
  struct Opts {
    std::string dir;
    bool no_bos = false, decode = false, skip_special = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Text on stdin → JSON list of token ids (or ids → text with --decode)");
  cmd->add_option("MODEL_DIR", o->dir, "Directory with tokenizer.json")->required();
  cmd->add_flag("--no-bos", o->no_bos, "Do not prepend the BOS token");
  cmd->add_flag("--decode", o->decode, "Read a JSON list of ids and print the text");
  cmd->add_flag("--skip-special", o->skip_special, "With --decode: drop special tokens");
  return {cmd, [o]() -> int {
            auto tok = load_tokenizer(o->dir);
            const std::string in = read_stdin();
            if (!o->decode) {
              const std::vector<int32_t> ids = tok->encode(in, !o->no_bos);
              write_stdout(nlohmann::json(ids).dump() + "\n");
              return 0;
            }
            const nlohmann::json j = parse_json(in, "stdin");
            if (!j.is_array()) fail("stdin: expected a JSON list of token ids");
            std::vector<int32_t> ids;
            for (const auto& v : j) {
              if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
                fail("stdin: token ids must be non-negative integers (got {})", v.dump());
              ids.push_back(int32_t(v.get<int64_t>()));
            }
            write_stdout(tok->decode(ids, o->skip_special));
            return 0;
          }};
}

Command add_template(CLI::App& app) {
  struct Opts {
    std::string dir;
    bool no_gen = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "template", "JSON messages on stdin → the prompt the chat template renders (stdout)");
  cmd->add_option("MODEL_DIR", o->dir, "Directory with tokenizer_config.json")->required();
  cmd->add_flag("--no-generation-prompt", o->no_gen,
                "Do not end with the assistant turn's opening");
  cmd->footer(
      "stdin holds a list of messages [{\"role\": \"user\", \"content\": \"...\"}, ...], or an\n"
      "object {\"messages\": [...], ...} whose other keys become template variables.");
  return {cmd, [o]() -> int {
            const std::string text = read_stdin();
            parse_json(text, "stdin");  // validation with a clear error (file, offset)
            // ordered_json keeps the caller's key order where a template prints whole objects
            // (tojson), as Python would.
            const auto in = nlohmann::ordered_json::parse(text);
            nlohmann::ordered_json messages, extra = nlohmann::ordered_json::object();
            if (in.is_array()) {
              messages = in;
            } else if (in.is_object() && in.contains("messages") && in["messages"].is_array()) {
              messages = in["messages"];
              for (const auto& [k, v] : in.items())
                if (k != "messages") extra[k] = v;
            } else {
              fail("stdin: expected a JSON list of messages or an object with \"messages\"");
            }
            auto tmpl = tokenizer::ChatTemplate::load(o->dir);
            write_stdout(tmpl.render(messages, !o->no_gen, extra));
            return 0;
          }};
}

}  // namespace seek::cli
