// seek export --gguf: a model directory as one llama.cpp deepseek2 GGUF file (model/gguf_export.h
// for the weights and metadata, tokenizer/gguf_vocab.h for the tokenizer and chat template).
#include <filesystem>

#include "cli/common.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/io.h"
#include "model/gguf_export.h"
#include "tokenizer/gguf_vocab.h"

namespace seek::cli {

Command add_export(CLI::App& app) {
  struct Opts {
    std::string dir, out, type = "bf16";
    bool gguf = false;
    LoadFlags load;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("export", "Write a model in another format (--gguf: llama.cpp)");
  cmd->add_flag("--gguf", o->gguf, "Write a llama.cpp GGUF file (architecture deepseek2)")->required();
  cmd->add_option("MODEL_DIR", o->dir, "Model directory (or .gguf file)")->required();
  cmd->add_option("OUT", o->out, "Output .gguf file")->required();
  cmd->add_option("--type", o->type, "Type of the matrices (norms and router stay f32)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
  add_load_flags(cmd, o->load);
  return {cmd, [o]() -> int {
            const DType dtype = o->type == "f32" ? DType::F32 : o->type == "f16" ? DType::F16 : DType::BF16;
            LoadFlags flags = o->load;
            flags.mmap = true;  // read once, written once: no need for a private copy
            const auto m = load_model(o->dir, flags);
            GgufWriter w;
            std::string name = std::filesystem::path(o->dir).filename().string();
            if (name.empty()) name = std::filesystem::path(o->dir).parent_path().filename().string();
            model::add_model_to_gguf(*m, dtype, name, w);
            if (is_gguf_file(o->dir)) {  // a .gguf source: its tokenizer metadata as it is
              const GgufFile src = GgufFile::open(o->dir);
              for (const auto& [key, value] : src.header().metadata)
                if (key.starts_with("tokenizer.")) w.set(key, value);
            } else if (file_exists(o->dir + "/tokenizer.json")) {
              tokenizer::add_tokenizer_to_gguf(o->dir, m->config().vocab_size, w);
            } else {
              write_stderr(fmt::format("seek: warning: {} has no tokenizer.json; the GGUF file has "
                                       "no tokenizer (seek logits still works on it)\n", o->dir));
            }
            std::unique_ptr<ProgressBar> bar;
            ProgressFn progress;
            if (stderr_is_tty()) {
              bar = std::make_unique<ProgressBar>("writing");
              progress = [&bar](uint64_t done, uint64_t total) { bar->update(done, total); };
            }
            w.write(o->out, progress);
            bar.reset();
            write_stderr(fmt::format("seek: wrote {} ({} tensors, {}) to {}\n", name, w.size(),
                                     o->type, o->out));
            return 0;
          }};
}

}  // namespace seek::cli
