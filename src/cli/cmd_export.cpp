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

namespace {

DType parse_type(const std::string& t) {
  static const std::pair<const char*, DType> types[] = {
      {"f32", DType::F32},   {"f16", DType::F16},   {"bf16", DType::BF16}, {"q8_0", DType::Q8_0},
      {"q4_0", DType::Q4_0}, {"q4_k", DType::Q4_K}, {"q4_k_m", DType::Q4_K},
      {"q6_k", DType::Q6_K}};
  for (const auto& [name, d] : types)
    if (t == name) return d;
  fail("unknown type {}", t);
}

// The model at `dir` as one deepseek2 GGUF file `out` whose matrices are `type`.
int write_gguf(const std::string& dir, const std::string& out, const std::string& type, bool mtp,
               LoadFlags flags) {
  const DType dtype = parse_type(type);
  flags.mmap = true;  // read once, written once: no need for a private copy
  const auto m = load_model(dir, flags);
  GgufWriter w;
  std::string name = std::filesystem::path(dir).filename().string();
  if (name.empty()) name = std::filesystem::path(dir).parent_path().filename().string();
  if (mtp && m->config().num_nextn_predict_layers == 0)
    fail("{} has no MTP module to write (--mtp)", dir);
  if (type == "q4_k_m") model::add_model_to_gguf_q4_k_m(*m, name, w, mtp);
  else model::add_model_to_gguf(*m, dtype, name, w, mtp);
  if (is_gguf_file(dir)) {  // a .gguf source: its tokenizer metadata as it is
    const GgufFile src = GgufFile::open(dir);
    for (const auto& [key, value] : src.header().metadata)
      if (key.starts_with("tokenizer.")) w.set(key, value);
  } else if (file_exists(dir + "/tokenizer.json")) {
    tokenizer::add_tokenizer_to_gguf(dir, m->config().vocab_size, w);
  } else {
    write_stderr(fmt::format("seek: warning: {} has no tokenizer.json; the GGUF file has "
                             "no tokenizer (seek logits still works on it)\n", dir));
  }
  std::unique_ptr<ProgressBar> bar;
  ProgressFn progress;
  if (stderr_is_tty()) {
    bar = std::make_unique<ProgressBar>("writing");
    progress = [&bar](uint64_t done, uint64_t total) { bar->update(done, total); };
  }
  w.write(out, progress);
  bar.reset();
  write_stderr(fmt::format("seek: wrote {} ({} tensors, {}) to {}\n", name, w.size(), type, out));
  return 0;
}

void add_mtp_flag(CLI::App* cmd, bool& mtp) {
  cmd->add_flag("--mtp", mtp,
                "Also write the MTP module(s) (llama.cpp's nextn layers), for speculative decoding "
                "in Seek; llama.cpp's deepseek2 does not run such files");
}

}  // namespace

Command add_export(CLI::App& app) {
  struct Opts {
    std::string dir, out, type = "bf16";
    bool gguf = false, mtp = false;
    LoadFlags load;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("export", "Write a model in another format (--gguf: llama.cpp)");
  cmd->add_flag("--gguf", o->gguf, "Write a llama.cpp GGUF file (architecture deepseek2)")->required();
  cmd->add_option("MODEL_DIR", o->dir, "Model directory (or .gguf file)")->required();
  cmd->add_option("OUT", o->out, "Output .gguf file")->required();
  cmd->add_option("--type", o->type,
                  "Type of the matrices (norms and router stay f32; a block type falls back to "
                  "q8_0, then f16, for rows that are not whole blocks)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q4_k_m", "q6_k"}))
      ->capture_default_str();
  add_load_flags(cmd, o->load);
  add_mtp_flag(cmd, o->mtp);
  return {cmd, [o]() -> int { return write_gguf(o->dir, o->out, o->type, o->mtp, o->load); }};
}

Command add_quantize(CLI::App& app) {
  struct Opts {
    std::string dir, out, type;
    bool mtp = false;
    LoadFlags load;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Quantize a model's matrices into a GGUF file (GGML types, as llama.cpp's quantizer)");
  cmd->add_option("MODEL_DIR", o->dir, "Model directory (or .gguf file)")->required();
  cmd->add_option("OUT", o->out, "Output .gguf file")->required();
  cmd->add_option("--type", o->type,
                  "q8_0, q4_0, q4_k, q4_k_m (llama.cpp's mix: Q4_K, with Q6_K for the output and "
                  "some layers' ffn_down) or q6_k (rows that are not whole blocks: q8_0, then f16)")
      ->check(CLI::IsMember({"q8_0", "q4_0", "q4_k", "q4_k_m", "q6_k"}))
      ->required();
  add_load_flags(cmd, o->load);
  add_mtp_flag(cmd, o->mtp);
  return {cmd, [o]() -> int { return write_gguf(o->dir, o->out, o->type, o->mtp, o->load); }};
}

}  // namespace seek::cli
