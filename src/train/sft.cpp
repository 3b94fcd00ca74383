#include "train/sft.h"

#include <cmath>
#include <cstdio>
#include <optional>

#include "core/error.h"
#include "core/io.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/sft_data.h"

namespace seek::train {

std::string run_sft(TrainConfig c, const RunOptions& opts) {
  if (c.kind != TrainConfig::Kind::Sft) fail("{}: not an SFT config", c.source);
  prepare_out(c, opts);
  TrainInputs in;
  in.name = "seek sft";
  in.model = init_model_config(c, 0);
  in.tokenizer_dir = c.init;
  if (!file_exists(c.init + "/tokenizer.json"))
    fail("{}: \"init\" {} has no tokenizer.json to encode the chats with", c.source, c.init);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(c.init);
  const tokenizer::ChatTemplate tmpl = tokenizer::ChatTemplate::load(c.init);
  if (int64_t(tok.vocab_size()) > in.model.vocab_size)
    fail("{}: the tokenizer has {} ids but the model's vocabulary only {}", c.init, tok.vocab_size(), in.model.vocab_size);

  // One sample must fit a micro-batch, and its positions the model.
  const int64_t budget = c.batch_size * c.seq_len;
  SftLimits lim;
  lim.max_targets = std::min(budget, in.model.max_position_embeddings);
  lim.max_reason = budget <= in.model.max_position_embeddings
                       ? fmt::format("the micro-batch budget batch_size × seq_len = {} tokens to predict", budget)
                       : fmt::format("the model's max_position_embeddings {}", in.model.max_position_embeddings);
  const SftData train = load_sft(c.sft_files, tmpl, tok, lim, c.skip_bad);
  std::optional<SftData> val;
  if (!c.sft_val.empty()) val = load_sft({c.sft_val}, tmpl, tok, lim, c.skip_bad);
  auto stats = [](const SftData& d) {
    int64_t tokens = 0, trained = 0;
    for (const SftSample& s : d.samples) tokens += s.targets(), trained += s.trained();
    return std::pair{tokens, trained};
  };
  const auto [tokens, trained] = stats(train);

  SftLoader loader(train.samples, budget, c.seed);
  int64_t packs = loader.packs_in_epoch(0);
  if (c.epochs > 0) {
    packs = 0;
    for (int64_t e = 0; e < c.epochs; ++e) packs += loader.packs_in_epoch(uint64_t(e));
    c.steps = (packs + c.grad_accum - 1) / c.grad_accum;
    c.schedule.total = c.steps;
  }
  in.train = &loader;
  if (val) {
    in.validate = [&](const std::function<model::StepResult(const model::TokenBatch&)>& forward) {
      // Every validation record once, in file order: the mean CE over all their assistant tokens.
      SftLoader vl(val->samples, budget, 0, /*shuffle=*/false);
      double sum = 0.0, weight = 0.0;
      for (int64_t i = vl.packs_in_epoch(0); i > 0; --i) {
        const model::TokenBatch b = vl.next();
        double w = 0.0;
        for (float x : b.weights) w += x;
        sum += forward(b).ce * w;
        weight += w;
      }
      return weight > 0 ? sum / weight : NAN;
    };
  }
  in.data_info = {{"type", "data"}, {"samples", train.samples.size()}, {"skipped", train.skipped},
                  {"tokens", tokens}, {"trained_tokens", trained}, {"packs_per_epoch", loader.packs_in_epoch(0)}, {"packs", packs},
                  {"steps", c.steps}};
  if (c.epochs > 0) in.data_info["epochs"] = c.epochs;
  if (val) {
    in.data_info["val_samples"] = val->samples.size();
    in.data_info["val_skipped"] = val->skipped;
  }
  if (opts.progress) {
    std::fprintf(stderr, "seek sft: %zu conversations, %lld tokens (%lld trained, on the assistant's turns), %lld micro-batches per epoch%s\n",
                 train.samples.size(), (long long)tokens, (long long)trained, (long long)loader.packs_in_epoch(0),
                 val ? fmt::format("; {} validation conversations", val->samples.size()).c_str() : "");
  }
  for (const SftData* d : std::initializer_list<const SftData*>{&train, val ? &*val : nullptr})  // a warning, even when quiet
    if (d && d->skipped)
      std::fprintf(stderr, "seek sft: skipped %lld bad records (the first: %s)\n", (long long)d->skipped, d->first_skipped.c_str());
  return train_loop(c, opts, in);
}

}  // namespace seek::train
