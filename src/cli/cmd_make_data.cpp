// seek make-data: the generated data of the tiny-R1 demonstration (scripts/tiny-r1), all
// deterministic for a seed: the base pretraining corpus, the cold-start SFT traces (training and
// validation files) and Countdown prompt files. rl/tiny_r1_data.h describes what each holds.
#include <filesystem>

#include "cli/common.h"
#include "core/error.h"
#include "core/io.h"
#include "rl/sample.h"
#include "rl/tiny_r1_data.h"
#include "tokenizer/tokenizer.h"

namespace seek::cli {

namespace {

struct MakeDataFlags {
  std::string out;
  uint64_t seed = 1;
  int64_t corpus_bytes = 4'000'000, traces = 1800, val_traces = 200, prompts = 0;
  int64_t vocab = 512, doc_bytes = 2048;
  int max_lines = 10;  // longest trace ~390 characters: prompt + trace stay within 512 tokens
  rl::CorpusMix mix;
};

// The tokenizer (OUT/tokenizer, a Hugging Face tokenizer.json + tokenizer_config.json with the
// chat template) and the corpus encoded with it (OUT/corpus/base.tokens, raw uint32 ids).
void write_tokens(const MakeDataFlags& f, const std::string& corpus, nlohmann::json& manifest) {
  // The prompt's own words, so that its fixed text encodes in few tokens.
  std::vector<std::string> extra;
  for (const nlohmann::json& r : rl::make_prompt_records(f.seed + 2, 2000))
    extra.push_back(r["prompt"].get<std::string>());
  const train::BpeResult bpe = rl::digit_tokenizer(corpus, extra, f.vocab);
  const std::string dir = f.out + "/tokenizer";
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/tokenizer.json", bpe.tokenizer.dump(1) + "\n");
  write_file_atomic(dir + "/tokenizer_config.json", bpe.tokenizer_config.dump(2) + "\n");
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(dir);
  const std::vector<int32_t> ids = rl::encode_corpus(corpus, tok, size_t(f.doc_bytes));
  std::string bytes(ids.size() * 4, '\0');
  for (size_t i = 0; i < ids.size(); ++i)  // little-endian whatever the host
    for (int b = 0; b < 4; ++b) bytes[4 * i + size_t(b)] = char(uint32_t(ids[i]) >> (8 * b) & 0xff);
  write_file_atomic(f.out + "/corpus/base.tokens", bytes);
  manifest["tokenizer"] = {{"dir", "tokenizer"}, {"vocab_size", bpe.vocab_size}, {"merges", bpe.merges}};
  manifest["corpus"]["tokens"] = {{"file", "corpus/base.tokens"}, {"count", ids.size()}};
  write_stderr(fmt::format("make-data: {}-id tokenizer -> {}/tokenizer; {} corpus tokens "
                           "({:.2f} bytes/token) -> {}/corpus/base.tokens\n",
                           bpe.vocab_size, f.out, ids.size(), double(corpus.size()) / double(ids.size()),
                           f.out));
}

}  // namespace

Command add_make_data(CLI::App& app) {
  auto f = std::make_shared<MakeDataFlags>();
  CLI::App* cmd = app.add_subcommand(
      "make-data", "Generate the tiny-R1 data: a pretraining corpus (arithmetic, Countdown "
                   "searches, chat-formatted arithmetic, short text) and Countdown SFT traces");
  cmd->add_option("-o,--out", f->out, "Output directory")->required();
  cmd->add_option("--seed", f->seed, "Seed of every generator")->capture_default_str();
  cmd->add_option("--corpus-bytes", f->corpus_bytes, "Size of OUT/corpus/base.txt (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--traces", f->traces, "SFT traces in OUT/sft-train.jsonl (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--val-traces", f->val_traces, "SFT traces in OUT/sft-val.jsonl (other problems)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-lines", f->max_lines, "Longest search a trace may show (lines)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prompts", f->prompts,
                  "Training-split Countdown tasks in OUT/prompts.jsonl (for --task FILE)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--vocab", f->vocab,
                  "Also write OUT/tokenizer (a digit-level BPE tokenizer of this many ids) and "
                  "OUT/corpus/base.tokens (the corpus encoded with it; 0: neither)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--doc-bytes", f->doc_bytes, "Document size of base.tokens (as `seek train`'s doc_bytes)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--mix-arithmetic", f->mix.arithmetic, "Corpus share of arithmetic facts")->capture_default_str();
  cmd->add_option("--mix-countdown", f->mix.countdown, "Corpus share of Countdown searches")
      ->capture_default_str();
  cmd->add_option("--mix-chat", f->mix.chat, "Corpus share of chat-formatted arithmetic")
      ->capture_default_str();
  cmd->add_option("--mix-prompt", f->mix.prompt,
                  "Corpus share of chat-formatted Countdown prompts with their search traces")
      ->capture_default_str();
  cmd->add_option("--prompt-lines", f->mix.prompt_lines,
                  "Longest search a corpus Countdown prompt's trace shows (lines)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--mix-text", f->mix.text, "Corpus share of short text")->capture_default_str();

  return {cmd, [f]() -> int {
            std::filesystem::create_directories(f->out);
            nlohmann::json manifest = {{"seed", f->seed}};
            if (f->corpus_bytes > 0) {
              rl::CorpusStats st;
              const std::string corpus = rl::make_base_corpus(f->seed, f->corpus_bytes, f->mix, &st);
              std::filesystem::create_directories(f->out + "/corpus");
              write_file_atomic(f->out + "/corpus/base.txt", corpus);
              nlohmann::json kinds;
              const char* names[] = {"arithmetic", "countdown", "chat", "prompt", "text"};
              for (int k = 0; k < rl::kCorpusKinds; ++k)
                kinds[names[k]] = {{"bytes", st.bytes[k]}, {"paragraphs", st.paragraphs[k]}};
              manifest["corpus"] = {{"file", "corpus/base.txt"}, {"bytes", corpus.size()}, {"kinds", kinds}};
              write_stderr(fmt::format("make-data: corpus {:.1f} MB -> {}/corpus/base.txt\n",
                                       double(corpus.size()) / 1e6, f->out));
              if (f->vocab > 0) write_tokens(*f, corpus, manifest);
            }
            if (f->traces + f->val_traces > 0) {
              // One stream of distinct problems: the validation traces are the ones after the
              // training traces, so the two files never share a problem.
              rl::TraceSetStats st;
              std::vector<nlohmann::json> all =
                  rl::make_sft_traces(f->seed, f->traces + f->val_traces, f->max_lines, &st);
              const std::vector<nlohmann::json> train(all.begin(), all.begin() + f->traces);
              const std::vector<nlohmann::json> val(all.begin() + f->traces, all.end());
              rl::write_jsonl(f->out + "/sft-train.jsonl", train);
              if (!val.empty()) rl::write_jsonl(f->out + "/sft-val.jsonl", val);
              manifest["sft"] = {{"train", train.size()}, {"val", val.size()},
                                 {"max_lines", f->max_lines}, {"drawn", st.drawn},
                                 {"skipped_eval_split", st.eval_split},
                                 {"skipped_too_long", st.too_long}};
              write_stderr(fmt::format(
                  "make-data: {} + {} SFT traces ({} problems drawn: {} held out, {} searches "
                  "longer than {} lines) -> {}/sft-train.jsonl, sft-val.jsonl\n",
                  train.size(), val.size(), st.drawn, st.eval_split, st.too_long, f->max_lines,
                  f->out));
            }
            if (f->prompts > 0) {
              // A different seed than the traces': RL prompts need not repeat SFT problems.
              rl::write_jsonl(f->out + "/prompts.jsonl",
                              rl::make_prompt_records(f->seed + 1, f->prompts));
              manifest["prompts"] = f->prompts;
            }
            write_file_atomic(f->out + "/manifest.json", manifest.dump(2) + "\n");
            return 0;
          }};
}

}  // namespace seek::cli
