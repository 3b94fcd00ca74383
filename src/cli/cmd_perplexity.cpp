// seek perplexity: perplexity of a model on a text file, and with --ref the drift of its
// next-token distributions from a reference model (a quantized GGUF against its original):
// KL divergence, top-token agreement and RMS Δp, in llama-perplexity's convention
// (model/perplexity.h).
#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/io.h"
#include "model/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace seek::cli {

Command add_perplexity(CLI::App& app) {
  struct Opts {
    std::string model, file, ref;
    int64_t ctx = 512, chunks = 0;
    bool precise = false, json = false;
    LoadFlags load;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity on a text file; with --ref, KL and top-token drift from a reference");
  cmd->add_option("MODEL", o->model, "Model directory or .gguf file")->required();
  cmd->add_option("-f,--file", o->file, "Text file (UTF-8), tokenized with MODEL's tokenizer")
      ->required();
  cmd->add_option("--ref", o->ref,
                  "Reference model (same tokenizer), e.g. the BF16 original of a quantized file");
  cmd->add_option("-c,--ctx", o->ctx, "Tokens per chunk (the second half of each is scored)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(4), int64_t(1) << 20));
  cmd->add_option("--chunks", o->chunks, "At most this many chunks (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--precise", o->precise, "F32 activations (default: BF16, as prompt prefill)");
  cmd->add_flag("--json", o->json, "Print the figures as one JSON object");
  add_load_flags(cmd, o->load);
  return {cmd, [o]() -> int {
            const std::string text = read_file(o->file);
            if (!valid_utf8(text)) fail("{}: not valid UTF-8", o->file);
            auto tok = load_tokenizer(o->model);
            const std::vector<int32_t> ids = tok->encode(text, false);
            auto m = load_model(o->model, o->load);
            std::unique_ptr<model::Model> ref;
            if (!o->ref.empty()) ref = load_model(o->ref, o->load);
            model::PerplexityOptions po;
            po.ctx = o->ctx;
            po.max_chunks = o->chunks;
            po.precision = o->precise ? kernels::Precision::F32 : kernels::Precision::BF16;
            if (stderr_is_tty())
              po.progress = [](int64_t done, int64_t total) {
                write_stderr(fmt::format("\rperplexity: chunk {}/{}", done, total));
                if (done == total) write_stderr("\n");
              };
            const model::PerplexityResult r = model::perplexity(*m, ids, po, ref.get());
            const double n = double(r.tokens);
            nlohmann::json j = {{"model", o->model},   {"file", o->file},
                                {"text_tokens", ids.size()}, {"ctx", o->ctx},
                                {"chunks", r.chunks},  {"scored_tokens", r.tokens},
                                {"ppl", r.ppl()},      {"nll", r.nll / n}};
            if (ref) {
              j["ref"] = o->ref;
              j["ref_ppl"] = r.ref_ppl();
              j["ppl_ratio"] = r.ppl() / r.ref_ppl();
              j["kl_mean"] = r.kl / n;
              j["kl_max"] = r.kl_max;
              j["same_top"] = double(r.same_top) / n;
              j["rms_dp"] = std::sqrt(r.dp_sq / n);
            }
            if (o->json) {
              write_stdout(j.dump() + "\n");
              return 0;
            }
            std::string out = fmt::format(
                "{}: {} tokens, {} chunks of {} ({} scored)\nPPL = {:.4f}  (mean NLL {:.5f})\n",
                o->file, ids.size(), r.chunks, o->ctx, r.tokens, r.ppl(), r.nll / n);
            if (ref)
              out += fmt::format(
                  "reference PPL = {:.4f}  ratio {:.5f}\nKL(ref || model) mean {:.6f}, max {:.5f}\n"
                  "same top token {:.2f}%  RMS dp {:.5f}\n",
                  r.ref_ppl(), r.ppl() / r.ref_ppl(), r.kl / n, r.kl_max,
                  100.0 * double(r.same_top) / n, std::sqrt(r.dp_sq / n));
            write_stdout(out);
            return 0;
          }};
}

}  // namespace seek::cli
