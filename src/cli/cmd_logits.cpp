// seek logits: per-position logits of a token sequence, for comparison against a reference
// implementation. One prefill forward with all_logits, written as raw little-endian float32
// [T, vocab] (row-major, no header), atomically.
#include <bit>
#include <charconv>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/io.h"

namespace seek::cli {

namespace {

// "1,2,3" or "[1, 2, 3]" (whitespace allowed).
std::vector<int32_t> parse_ids(std::string_view s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
                            s[i] == ',' || s[i] == '[' || s[i] == ']'))
      ++i;
  };
  for (skip(); i < s.size(); skip()) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data() + i, s.data() + s.size(), v);
    if (ec != std::errc() || v < 0 || v > INT32_MAX)
      fail("--ids: expected comma-separated non-negative token ids, got \"{}\"",
           std::string(s.substr(i, 20)));
    ids.push_back(int32_t(v));
    i = size_t(p - s.data());
  }
  if (ids.empty()) fail("--ids: no token ids given");
  return ids;
}

}  // namespace

Command add_logits(CLI::App& app) {
  struct Opts {
    std::string dir, ids, out;
    bool precise = true, naive = false;
    LoadFlags load;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "logits", "Write the logits of every position of a token sequence (float32 [T, vocab])");
  cmd->add_option("MODEL_DIR", o->dir, "Model directory")->required();
  cmd->add_option("--ids", o->ids, "Token ids: 1,2,3 (or - to read them from stdin)")->required();
  cmd->add_option("-o,--out", o->out, "Output file (raw little-endian float32, row-major)")
      ->required();
  cmd->add_flag("--precise,!--fast", o->precise,
                "F32 activations (default); --fast uses BF16 activations like prompt prefill");
  cmd->add_flag("--naive", o->naive,
                "Naive MLA attention (per-head keys/values) instead of the automatic choice");
  add_load_flags(cmd, o->load);
  return {cmd, [o]() -> int {
            static_assert(std::endian::native == std::endian::little);
            const std::vector<int32_t> ids = parse_ids(o->ids == "-" ? read_stdin() : o->ids);
            auto m = load_model(o->dir, o->load);
            const model::ModelConfig& c = m->config();
            for (size_t i = 0; i < ids.size(); ++i)
              if (ids[i] >= c.vocab_size)
                fail("--ids: token {} at position {} is outside the vocabulary (vocab_size {})",
                     ids[i], i, c.vocab_size);
            if (int64_t(ids.size()) > c.max_position_embeddings)
              fail("--ids: {} tokens exceed max_position_embeddings {}", ids.size(),
                   c.max_position_embeddings);

            model::KVCache cache(c, 1, int64_t(ids.size()));
            model::Batch batch;
            batch.tokens = ids;
            batch.seqs.push_back({.slot = 0, .start_pos = 0, .n_tokens = int64_t(ids.size()),
                                  .all_logits = true});
            model::ForwardOptions opts;
            opts.precision = o->precise ? kernels::Precision::F32 : kernels::Precision::BF16;
            if (o->naive) opts.attention = model::ForwardOptions::Attention::Naive;
            std::vector<float> logits;
            model::forward(*m, cache, batch, logits, opts);
            const size_t expect = ids.size() * size_t(c.vocab_size);
            if (logits.size() != expect)
              fail("forward returned {} logits, expected {}", logits.size(), expect);
            write_file_atomic(o->out, std::string_view(reinterpret_cast<const char*>(logits.data()),
                                                       logits.size() * sizeof(float)));
            write_stderr(fmt::format("seek: wrote logits [{}, {}] (float32) to {}\n", ids.size(),
                                     c.vocab_size, o->out));
            return 0;
          }};
}

}  // namespace seek::cli
