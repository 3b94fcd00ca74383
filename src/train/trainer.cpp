#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/io.h"
#include "core/json_config.h"
#include "core/memory.h"
#include "dist/comm.h"
#include "dist/expert_group.h"
#include "dist/pipeline_runtime.h"
#include "model/params.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"
#include "train/balance.h"
#include "train/bpe_trainer.h"
#include "train/chat_template.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/placement.h"
#include "train/report.h"

namespace seek::train {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- config

using json_config::check_keys;
using json_config::get;
using json_config::positive;

TrainConfig TrainConfig::parse(const std::string& text, const std::string& source, Kind kind) {
  TrainConfig c;
  c.kind = kind;
  c.source = source;
  const bool sft = kind == Kind::Sft;
  const nlohmann::json j = json_config::parse(text, source);
  check_keys(j, {"init", "model", "data", "train", "parallel", "out"}, source);
  if (j.contains("parallel")) {
    const std::string ps = source + ": parallel";
    const auto& p = j["parallel"];
    check_keys(p, {"data", "expert", "pipeline", "zero", "schedule", "stage_layers"}, ps);
    get(p, "data", c.data_parallel, ps);
    get(p, "zero", c.zero, ps);
    get(p, "expert", c.expert_parallel, ps);
    get(p, "pipeline", c.pipeline_parallel, ps);
    get(p, "schedule", c.pipeline_schedule, ps);
    get(p, "stage_layers", c.stage_layers, ps);
    if (c.data_parallel < 0) fail("{}: \"data\" must be >= 1 (or 0: the number of ranks)", ps);
    if (c.zero != 0 && c.zero != 1) fail("{}: \"zero\" must be 0 or 1, got {}", ps, c.zero);
    if (c.expert_parallel < 1) fail("{}: \"expert\" must be >= 1, got {}", ps, c.expert_parallel);
    if (c.pipeline_parallel < 1) fail("{}: \"pipeline\" must be >= 1, got {}", ps, c.pipeline_parallel);
    if (c.data_parallel > 0 && c.data_parallel % c.expert_parallel != 0)
      fail("{}: \"expert\" {} does not divide \"data\" {} (expert parallelism runs inside the "
           "data-parallel group)", ps, c.expert_parallel, c.data_parallel);
    if (c.pipeline_schedule != "1f1b" && c.pipeline_schedule != "dualpipe")
      fail("{}: \"schedule\" must be \"1f1b\" or \"dualpipe\", got \"{}\"", ps, c.pipeline_schedule);
  }
  get(j, "init", c.init, source);
  if (sft && c.init.empty()) fail("{}: missing \"init\" (the model directory to fine-tune)", source);
  if (!j.contains("model") && !j.contains("init"))
    fail("{}: missing \"model\" section (or \"init\", a checkpoint to fine-tune)", source);
  c.model = j.contains("model") ? j["model"] : nlohmann::json::object();
  if (!c.model.is_object()) fail("{}: \"model\" must be an object", source);
  const std::string ds = source + ": data", ts = source + ": train";
  if (sft) {
    if (!j.contains("data")) fail("{}: missing \"data\" (\"sft\": the chat records)", source);
    const auto& d = j["data"];
    check_keys(d, {"sft", "val", "skip_bad"}, ds);
    if (!d.contains("sft")) fail("{}: missing \"sft\" (a JSONL file of chat records, or a list of them)", ds);
    if (d["sft"].is_string()) c.sft_files = {d["sft"].get<std::string>()};
    else get(d, "sft", c.sft_files, ds);
    if (c.sft_files.empty()) fail("{}: \"sft\" names no file", ds);
    get(d, "val", c.sft_val, ds);
    get(d, "skip_bad", c.skip_bad, ds);
  } else if (j.contains("data")) {
    const auto& d = j["data"];
    check_keys(d, {"files", "tokens", "order", "vocab_size", "val_every", "doc_bytes"}, ds);
    get(d, "files", c.files, ds);
    get(d, "tokens", c.tokens, ds);
    if (!c.tokens.empty() && !c.files.empty())
      fail("{}: \"files\" and \"tokens\" are two data sources; give one", ds);
    if (!c.tokens.empty() && (d.contains("vocab_size") || d.contains("val_every") || d.contains("doc_bytes")))
      fail("{}: \"vocab_size\", \"val_every\" and \"doc_bytes\" apply to \"files\", not \"tokens\"", ds);
    std::string order = c.tokens.empty() ? "shuffled" : "sequential";
    get(d, "order", order, ds);
    if (order != "sequential" && order != "shuffled")
      fail("{}: \"order\" must be sequential or shuffled, got \"{}\"", ds, order);
    c.sequential = order == "sequential";
    get(d, "vocab_size", c.vocab_size, ds);
    get(d, "val_every", c.val_every, ds);
    get(d, "doc_bytes", c.doc_bytes, ds);
  }
  if (!sft && c.files.empty() && c.tokens.empty()) c.files = {"@debian-docs"};
  if (j.contains("train")) {
    const auto& t = j["train"];
    std::set<std::string> keys = ModelRunSettings::keys();
    keys.insert({"seq_len", "steps", "mtp_lambda", "eval_batches"});
    if (sft) keys.insert({"epochs", "patience"});
    check_keys(t, keys, ts);
    if (sft) {
      if (t.contains("steps") && t.contains("epochs")) fail("{}: give \"steps\" or \"epochs\", not both", ts);
      if (!t.contains("steps")) c.epochs = 1;
      get(t, "epochs", c.epochs, ts);
      if (!t.contains("steps")) positive(c.epochs, "epochs", ts);
      get(t, "patience", c.patience, ts);
      if (c.patience < 0) fail("{}: \"patience\" must be >= 0 (0: off), got {}", ts, c.patience);
    }
    c.read(t, ts);
    get(t, "seq_len", c.seq_len, ts);
    get(t, "steps", c.steps, ts);
    get(t, "mtp_lambda", c.mtp_lambda, ts);
    get(t, "eval_batches", c.eval_batches, ts);
  }
  c.schedule.total = c.steps;
  get(j, "out", c.out, source);
  if (c.out.empty()) fail("{}: missing \"out\" (the run directory)", source);
  for (auto [v, k] : {std::pair{c.seq_len, "seq_len"}, {c.steps, "steps"}, {c.eval_batches, "eval_batches"}})
    positive(v, k, ts);
  c.check(ts);
  if (c.vocab_size < 300) fail("{}: \"vocab_size\" must be at least 300 (256 bytes + added tokens)", ds);
  if (c.vocab_size > 65536) fail("{}: \"vocab_size\" above 65536 is not supported", ds);
  positive(c.doc_bytes, "doc_bytes", ds);
  // Resolve relative paths against the config file's directory.
  auto resolve = [&](const std::string& p) {
    return p.starts_with("@") ? p : json_config::resolve(source, p);  // "@debian-docs" stays
  };
  for (std::string& f : c.files) f = resolve(f);
  c.tokens = resolve(c.tokens);
  c.init = resolve(c.init);
  for (std::string& f : c.sft_files) f = resolve(f);
  c.sft_val = resolve(c.sft_val);
  if (sft && !j.contains("train")) c.epochs = 1;
  if (c.patience > 0 && c.sft_val.empty())
    fail("{}: \"patience\" needs validation records (data: \"val\")", ts);
  c.out = resolve(c.out);
  // Model geometry: checked now (with a placeholder vocabulary unless it is the init's or a
  // token file's, which the model must then give) so a bad config fails before any data work.
  if (c.init.empty() && !c.tokens.empty() && !c.model.contains("vocab_size"))
    fail("{}: \"model\" needs \"vocab_size\" with a token file (no \"init\" checkpoint gives it)", source);
  const model::ModelConfig mc = init_model_config(c, c.vocab_size);
  c.resolve_save_dtype(c.init.empty() ? nullptr : &mc, ts);
  if (mc.num_nextn_predict_layers > 0 && c.seq_len < mc.num_nextn_predict_layers + 2)
    fail("{}: seq_len {} is too short for {} MTP modules", ts, c.seq_len, mc.num_nextn_predict_layers);
  if (c.seq_len > mc.max_position_embeddings)
    fail("{}: seq_len {} exceeds the model's max_position_embeddings {}", ts, c.seq_len, mc.max_position_embeddings);
  if (c.pipeline_parallel > 1) {
    const std::string ps = source + ": parallel";
    if (c.pipeline_parallel > mc.num_hidden_layers)
      fail("{}: \"pipeline\" {} stages for a model of {} layers (each stage needs at least one)", ps,
           c.pipeline_parallel, mc.num_hidden_layers);
    try {  // the schedule's own conditions on stages and micro-batches (train: grad_accum)
      dist::make_schedule(c.pipeline_schedule, int(c.pipeline_parallel), int(c.grad_accum));
    } catch (const Error& e) {
      fail("{}: {} (the micro-batches are train: \"grad_accum\")", ps, e.what());
    }
    try {
      dist::stage_layers(mc.num_hidden_layers, int(c.pipeline_parallel), c.stage_layers);
    } catch (const Error& e) {
      fail("{}: \"stage_layers\": {}", ps, e.what());
    }
  } else if (!c.stage_layers.empty()) {
    fail("{}: parallel: \"stage_layers\" needs \"pipeline\" above 1", source);
  }
  return c;
}

TrainConfig TrainConfig::load(const std::string& path, Kind kind) { return parse(read_file(path), path, kind); }

model::ModelConfig init_model_config(const TrainConfig& c, int64_t vocab_size) {
  if (c.init.empty()) {
    nlohmann::json mj = c.model;
    if (c.tokens.empty()) mj["vocab_size"] = vocab_size;
    if (!mj.contains("model_type")) mj["model_type"] = "deepseek_v3";
    if (c.tokens.empty() || !mj.contains("bos_token_id")) mj["bos_token_id"] = 0;
    if (c.tokens.empty() || !mj.contains("eos_token_id")) mj["eos_token_id"] = 1;
    if (!mj.contains("torch_dtype")) mj["torch_dtype"] = "float32";
    return model::ModelConfig::from_json(mj, c.source + ": model");
  }
  const std::string path = c.init + "/config.json";
  if (!file_exists(path)) fail("{}: \"init\" {} is not a model directory (no config.json)", c.source, c.init);
  nlohmann::json ij;
  try {
    ij = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
  model::ModelConfig mc = model::ModelConfig::from_json(ij, path);
  // "model" alongside "init" may only restate the checkpoint's geometry: a different value
  // would train a model the weights do not fit.
  const nlohmann::json known = mc.to_json();
  for (auto it = c.model.begin(); it != c.model.end(); ++it) {
    const nlohmann::json* have = ij.contains(it.key()) ? &ij[it.key()] : known.contains(it.key()) ? &known.at(it.key()) : nullptr;
    if (!have)
      fail("{}: model: field \"{}\" is not part of the init checkpoint's config ({})", c.source, it.key(), path);
    if (*have != it.value())
      fail("{}: model: field \"{}\" is {} but the init checkpoint has {} ({}); leave it out to fine-tune that model",
           c.source, it.key(), it.value().dump(), have->dump(), path);
  }
  return mc;
}

std::vector<std::string> debian_docs_corpus() {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/share/common-licenses", ec))
    if (e.is_regular_file()) paths.push_back(e.path().string());
  for (const auto& e : fs::directory_iterator("/usr/share/doc", ec)) {
    const fs::path p = e.path() / "copyright";
    if (fs::is_regular_file(p, ec)) paths.push_back(p.string());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<std::string> texts;
  std::unordered_set<std::string> seen;
  for (const std::string& p : paths) {
    std::string t;
    try { t = read_file(p); } catch (const Error&) { continue; }
    if (t.empty() || !valid_utf8(t) || !seen.insert(t).second) continue;
    texts.push_back(std::move(t));
  }
  if (texts.empty()) fail("the default corpus is empty: no readable files in /usr/share/common-licenses or /usr/share/doc/*/copyright");
  return texts;
}

// ---------------------------------------------------------------- run

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string hms(double s) {
  const int64_t t = int64_t(s);
  return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

// Where the run's tokenizer lives: the init checkpoint's, or the one trained into OUT/tokenizer.
std::string tokenizer_dir(const TrainConfig& c) { return c.init.empty() ? c.out + "/tokenizer" : c.init; }

// Tokenizer + shards in OUT/tokenizer and OUT/data (kept across resumes). With an init
// checkpoint its tokenizer encodes the files; with a token file there is nothing to prepare.
model::ModelConfig prepare_data(const TrainConfig& c, bool progress) {
  if (!c.tokens.empty()) return init_model_config(c, 0);
  const std::string tdir = tokenizer_dir(c), ddir = c.out + "/data";
  if (!file_exists(tdir + "/tokenizer.json") || !file_exists(ddir + "/train.bin")) {
    std::vector<std::string> texts;
    for (const std::string& f : c.files) {
      if (f == "@debian-docs") {
        auto d = debian_docs_corpus();
        texts.insert(texts.end(), std::make_move_iterator(d.begin()), std::make_move_iterator(d.end()));
      } else {
        auto d = read_corpus({f});
        texts.insert(texts.end(), std::make_move_iterator(d.begin()), std::make_move_iterator(d.end()));
      }
    }
    size_t bytes = 0;
    for (const auto& t : texts) bytes += t.size();
    int64_t vocab = 0;
    if (c.init.empty()) {
      if (progress) std::fprintf(stderr, "seek train: corpus %zu files, %.1f MB; training a %lld-token BPE tokenizer\n", texts.size(), double(bytes) / 1e6, (long long)c.vocab_size);
      BpeResult bpe = train_bpe(texts, c.vocab_size, kDeepSeekV3ChatTemplate);
      fs::create_directories(tdir);
      write_file_atomic(tdir + "/tokenizer_config.json", bpe.tokenizer_config.dump(2) + "\n");
      write_file_atomic(tdir + "/tokenizer.json", bpe.tokenizer.dump(1) + "\n");
      vocab = bpe.vocab_size;
    } else {
      if (!file_exists(tdir + "/tokenizer.json"))
        fail("{}: \"init\" {} has no tokenizer.json to encode \"files\" with (give \"tokens\" instead)", c.source, c.init);
      vocab = init_model_config(c, 0).vocab_size;
    }
    tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(tdir);
    auto [ntr, nval] = build_shards(split_documents(texts, size_t(c.doc_bytes)), tok, vocab, ddir, c.val_every);
    if (progress) std::fprintf(stderr, "seek train: %lld training tokens, %lld validation tokens (%.2f bytes/token)\n", (long long)ntr, (long long)nval, double(bytes) / double(ntr + nval));
  }
  return init_model_config(c, Shard::open(ddir + "/train.bin").vocab_size());
}

nlohmann::json moe_json(const model::StepResult& r) {
  nlohmann::json a = nlohmann::json::array();
  for (size_t j = 0; j < r.moe_layers.size(); ++j)
    a.push_back({{"layer", r.moe_layers[j]}, {"load", r.expert_load[j]}, {"maxvio", max_violation(r.expert_load[j])}});
  return a;
}

}  // namespace

void prepare_out(const TrainConfig& c, const RunOptions& opts) {
  const dist::Comm& comm = dist::Comm::world();
  c.start(c.out, opts.resume, "training");  // every rank, before anything is written
  comm.barrier();
  if (comm.is_root()) fs::create_directories(c.out);
  comm.barrier();
}

std::string run_training(const TrainConfig& c, const RunOptions& opts) {
  const dist::Comm& comm = dist::Comm::world();
  prepare_out(c, opts);
  TrainInputs in;
  // Rank 0 trains the tokenizer and writes the shards; the others then open what it wrote.
  if (comm.is_root()) in.model = prepare_data(c, opts.progress);
  comm.barrier();
  if (!comm.is_root()) in.model = prepare_data(c, false);
  in.tokenizer_dir = tokenizer_dir(c);
  Shard train_shard = c.tokens.empty() ? Shard::open(c.out + "/data/train.bin") : Shard::open_tokens(c.tokens, in.model.vocab_size);
  if (train_shard.size() < c.seq_len + 1)
    fail("{}: {} tokens, shorter than one training sequence (seq_len + 1 = {} tokens)",
         c.tokens.empty() ? c.out + "/data/train.bin" : c.tokens, train_shard.size(), c.seq_len + 1);
  // A token file has no held-out part: no validation.
  std::optional<Shard> val_shard;
  if (c.tokens.empty()) val_shard = Shard::open(c.out + "/data/val.bin");
  Loader loader(train_shard, c.batch_size, c.seq_len, c.seed, c.sequential);
  in.train = &loader;
  in.validate = [&](const std::function<model::StepResult(const model::TokenBatch&)>& forward) -> double {
    if (!val_shard || val_shard->size() <= c.seq_len) return NAN;
    Loader vl(*val_shard, c.batch_size, c.seq_len, 12345);
    double sum = 0.0;
    const int64_t n = std::min<int64_t>(c.eval_batches, std::max<int64_t>(1, vl.windows() / c.batch_size));
    for (int64_t i = 0; i < n; ++i) sum += forward(vl.next()).ce;
    return sum / double(n);
  };
  return train_loop(c, opts, in);
}

namespace {

// Early stopping: the best validation loss so far, its step, the evaluations since. It rides
// in every checkpoint (patience.json) so a resumed run stops where the uninterrupted one does.
struct Patience {
  double best = INFINITY;
  int64_t best_step = 0, since = 0;
  bool stopped = false;
  std::string best_name() const { return fmt::format("best-{:06}", best_step); }
  std::string dump() const {
    return nlohmann::json{{"best_val_loss", std::isfinite(best) ? nlohmann::json(best) : nlohmann::json()},
                          {"best_step", best_step}, {"evals_since_best", since}, {"stopped", stopped}}.dump() + "\n";
  }
  static Patience load(const std::string& path) {
    Patience p;
    if (!file_exists(path)) return p;
    try {
      const nlohmann::json j = nlohmann::json::parse(read_file(path));
      if (!j["best_val_loss"].is_null()) p.best = j["best_val_loss"].get<double>();
      p.best_step = j.at("best_step").get<int64_t>();
      p.since = j.at("evals_since_best").get<int64_t>();
      p.stopped = j.at("stopped").get<bool>();
    } catch (const std::exception& e) {
      fail("{}: not a patience state: {}", path, e.what());
    }
    return p;
  }
};

// OUT/FROM copied whole to OUT/TO: into a temporary directory, then renamed over TO.
void copy_checkpoint(const std::string& out, const std::string& from, const std::string& to) {
  const fs::path tmp = fs::path(out) / fmt::format(".tmp-{}-{}", to, ::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::copy(fs::path(out) / from, tmp, fs::copy_options::recursive, ec);
  if (!ec) fs::remove_all(fs::path(out) / to, ec);
  if (!ec) fs::rename(tmp, fs::path(out) / to, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    fail("cannot copy checkpoint {}/{} to {}/{}: {}", out, from, out, to, ec.message());
  }
}

// A rank's result for a micro-batch share without sequences: zeros, shaped as a forward's.
model::StepResult empty_result(const model::ModelConfig& mc) {
  model::StepResult r;
  r.ce_mtp.assign(size_t(mc.num_nextn_predict_layers), 0.0);
  for (int64_t l = 0; l < mc.num_hidden_layers + mc.num_nextn_predict_layers; ++l)
    if (mc.is_moe_layer(l)) {
      r.moe_layers.push_back(l);
      r.expert_load.emplace_back(size_t(mc.n_routed_experts), 0);
    }
  return r;
}

// A pipeline stage's part of a micro-batch's result in the whole model's shape (every MoE
// layer; the other stages' loads zero).
model::StepResult whole_shape(const model::ModelConfig& mc, model::StepResult part) {
  model::StepResult r = empty_result(mc);
  r.loss = part.loss;
  r.ce = part.ce;
  r.balance = part.balance;
  r.tokens = part.tokens;
  for (size_t k = 0; k < part.ce_mtp.size(); ++k) r.ce_mtp[k] = part.ce_mtp[k];
  for (size_t j = 0; j < part.moe_layers.size(); ++j)
    for (size_t i = 0; i < r.moe_layers.size(); ++i)
      if (r.moe_layers[i] == part.moe_layers[j]) r.expert_load[i] = std::move(part.expert_load[j]);
  return r;
}

// Data parallelism: the step's statistics summed over the ranks (means of equal shares
// averaged: `mean_of_shares`), so every rank logs and balances on the whole batch.
// With pipelines the stages' parts add up too: `replicas` is the number of data-parallel shares.
void reduce_stats(const dist::Comm& comm, model::StepResult& r, bool mean_of_shares, int replicas) {
  if (comm.size() == 1) return;
  std::vector<double> s = {r.loss, r.ce, r.balance};
  s.insert(s.end(), r.ce_mtp.begin(), r.ce_mtp.end());
  comm.allreduce_sum(s);
  const double k = mean_of_shares ? 1.0 / replicas : 1.0;
  r.loss = s[0] * k;
  r.ce = s[1] * k;
  r.balance = s[2] * k;
  for (size_t i = 0; i < r.ce_mtp.size(); ++i) r.ce_mtp[i] = s[3 + i] * k;
  std::vector<int64_t> loads;
  for (const auto& l : r.expert_load) loads.insert(loads.end(), l.begin(), l.end());
  loads.push_back(r.tokens);
  comm.allreduce_sum(loads);
  size_t o = 0;
  for (auto& l : r.expert_load)
    for (int64_t& x : l) x = loads[o++];
  r.tokens = loads[o];
}


// Copies every tensor `from` (laid out as `a`) holds into its place in `to` (laid out as `b`),
// where b has it: between a rank's part of the model and the whole model's layout.
void copy_tensors(const model::Params& a, const float* from, const model::Params& b, float* to) {
  std::unordered_map<std::string_view, size_t> at;
  for (const model::ParamInfo& i : b.infos()) at.emplace(i.name, i.offset);
  for (const model::ParamInfo& i : a.infos())
    if (auto it = at.find(i.name); it != at.end())
      std::copy_n(from + i.offset, i.numel, to + it->second);
}

// A part of the flat vector, a region of the job (placement.h), and the ranks that hold it:
// its gradients are summed, and with ZeRO-1 its optimizer state is sharded, among them.
struct Part {
  const dist::Comm* comm = nullptr;
  int64_t base = 0, len = 0;
  std::vector<int64_t> shards;  // ZeRO-1: each rank's shard size
  dist::Range mine;             // this rank's shard (absolute offsets), or the whole part
  std::optional<AdamW> opt;
};

}  // namespace

std::string train_loop(const TrainConfig& c, const RunOptions& opts, TrainInputs& in) {
  if (c.threads > 0) omp_set_num_threads(c.threads);
  retain_freed_memory();
  const dist::Comm& comm = dist::Comm::world();
  const int ranks = comm.size(), rank = comm.rank();
  const bool root = comm.is_root();
  // Pipelines of P consecutive ranks (rank = replica·P + stage); D = ranks / P of them.
  const int P = int(c.pipeline_parallel);
  if (ranks % P != 0)
    fail("{}: parallel: \"pipeline\" {} does not divide the job's {} rank{}", c.source, P, ranks,
         ranks == 1 ? "" : "s");
  const int D = ranks / P, stage = rank % P, replica = rank / P;
  if (c.data_parallel > 0 && c.data_parallel * P != ranks)
    fail("{}: parallel: \"data\" is {}{} but the job has {} rank{} (run it with mpirun -np {})",
         c.source, c.data_parallel, P > 1 ? fmt::format(" × \"pipeline\" {}", P) : "", ranks,
         ranks == 1 ? "" : "s", c.data_parallel * P);
  const bool zero = ranks > 1 && c.zero == 1;
  const model::ModelConfig& mc = in.model;
  // Expert parallelism: groups of E consecutive data-parallel ranks of one stage, each rank
  // running its share of the experts.
  const int64_t ep_size = c.expert_parallel;
  if (D % ep_size != 0)
    fail("{}: parallel: \"expert\" {} does not divide the job's {} data-parallel ranks", c.source,
         ep_size, D);
  if (ep_size > 1 && (mc.n_routed_experts == 0 || mc.n_routed_experts % ep_size != 0))
    fail("{}: parallel: \"expert\" {}: the model's {} routed experts do not divide among {} ranks",
         c.source, ep_size, mc.n_routed_experts, ep_size);
  const dist::Comm pipe_comm = P > 1 ? comm.split(replica) : dist::Comm::world();
  const dist::Comm dp_comm = P > 1 ? comm.split(stage) : dist::Comm::world();
  const dist::Comm ep_comm = ep_size > 1 ? comm.split(int(stage * (D / ep_size) + replica / ep_size))
                                         : dist::Comm::world();
  std::optional<dist::ExpertGroup> ep;
  if (ep_size > 1) ep.emplace(ep_comm);
  std::optional<dist::PipelineRuntime> pipeline;
  if (P > 1)
    pipeline.emplace(pipe_comm, dist::make_schedule(c.pipeline_schedule, P, int(c.grad_accum)), mc, c.stage_layers);
  if (D > 1 && c.kind == TrainConfig::Kind::Pretrain && c.batch_size % D != 0)
    fail("{}: train: \"batch_size\" {} does not divide among {} data-parallel ranks", c.source,
         c.batch_size, D);

  BatchSource& loader = *in.train;
  const char* name_c = in.name.c_str();
  SaveDType save_dtype = SaveDType::F32;
  parse_save_dtype(c.save_dtype, &save_dtype);

  TrainState st;
  Patience pat;
  // Each rank holds only the tensors it computes with (weights, gradients, optimizer state):
  // its pipeline stages' and, under expert parallelism, its share of their routed experts.
  const Placement placement(mc, JobShape{P, D, int(ep_size), pipeline ? pipeline->schedule().directions : 1,
                                         dist::stage_layers(mc.num_hidden_layers, P, c.stage_layers)});
  const model::Params whole_layout = model::Params::layout_only(mc);
  model::Params p = opts.resume ? model::Params::load(mc, fs::canonical(c.out + "/latest").string(), placement.of_rank(rank))
                    : !c.init.empty() ? model::Params::load(mc, c.init, placement.of_rank(rank))
                                      : model::Params::init(mc, c.init_std, c.seed, placement.of_rank(rank));
  // A communicator per region of the job among the ranks holding it (every rank takes part in
  // every split), and a part of the flat vector per region this rank holds.
  std::deque<dist::Comm> region_comms;
  for (size_t k = 0; k < placement.keys().size(); ++k)
    region_comms.push_back(comm.split(placement.holds(rank, int(k)) ? 0 : 1));
  std::vector<Part> parts(p.regions().size());
  for (size_t k = 0; k < parts.size(); ++k) {
    const model::ParamRegion& region = p.regions()[k];
    parts[k].comm = &region_comms[size_t(region.id)];
    parts[k].base = int64_t(region.begin);
    parts[k].len = int64_t(region.end - region.begin);
  }
  for (Part& part : parts) {  // ZeRO-1: this rank's shard of the part and of its optimizer state
    const int n = part.comm->size(), r = part.comm->rank();
    part.shards = dist::shard_counts(part.len, zero ? n : 1);
    const dist::Range s = zero ? dist::shard(part.len, r, n) : dist::Range{0, part.len};
    part.mine = {part.base + s.begin, part.base + s.end};
    part.opt.emplace(p, c.adamw, part.mine.begin, part.mine.end);
  }
  // The weights each rank holds (their optimizer state follows them), for the metrics.
  std::vector<int64_t> held(size_t(ranks), 0);
  held[size_t(rank)] = int64_t(p.size());
  comm.allreduce_sum(held);
  if (opts.resume) {
    st = load_train_state(c.out + "/latest", whole_layout.size());
    // The file is the whole model's layout; this rank takes its tensors.
    std::vector<float> m(p.size()), v(p.size());
    copy_tensors(whole_layout, st.m.data(), p, m.data());
    copy_tensors(whole_layout, st.v.data(), p, v.data());
    if (!st.master.empty())  // the file's BF16/FP8 weights are rounded
      copy_tensors(whole_layout, st.master.data(), p, p.data().data());
    for (Part& part : parts) {
      part.opt->set_moments(m.data() + part.mine.begin, v.data() + part.mine.begin);
      part.opt->set_steps(st.step);
    }
    loader.set_state(st.data);
    if (c.patience > 0) pat = Patience::load(c.out + "/latest/patience.json");
  }
  // Rank 0 writes the run's files.
  const std::string metrics = c.out + "/metrics.jsonl";
  FILE* mf = nullptr;
  if (root) {
    if (!opts.resume) write_file_atomic(metrics, in.data_info.is_null() ? "" : in.data_info.dump() + "\n");
    mf = std::fopen(metrics.c_str(), "a");
    if (!mf) fail("cannot append to {}", metrics);
  }
  const auto log_line = [&mf](const nlohmann::json& j) {
    if (!mf) return;
    std::fprintf(mf, "%s\n", j.dump().c_str());
    std::fflush(mf);
  };
  const std::string config_text = read_file(c.source);

  int64_t n_params = 0;
  for (const model::ParamInfo& i : whole_layout.infos()) n_params += i.numel;
  if (opts.progress && root)
    std::fprintf(stderr, "%s: %s parameters (%lld layers + %lld MTP), %lld steps of %s%lld tokens%s%s\n", name_c,
                 fmt::format("{:.2f}M", double(n_params) / 1e6).c_str(), (long long)mc.num_hidden_layers,
                 (long long)mc.num_nextn_predict_layers, (long long)c.steps, c.kind == TrainConfig::Kind::Sft ? "up to " : "",
                 (long long)(c.batch_size * c.seq_len * c.grad_accum), opts.resume ? fmt::format(", resuming at step {}", st.step).c_str() : "",
                 ranks > 1 ? fmt::format(", {} data-parallel rank{}{}{}", D, D == 1 ? "" : "s",
                                         P > 1 ? fmt::format(" × {} pipeline stages ({})", P, c.pipeline_schedule) : "",
                                         zero ? " (ZeRO-1)" : "").c_str() : "");

  model::ObjectiveOptions oo;
  oo.mtp_lambda = c.mtp_lambda;
  oo.balance_alpha = c.balance_alpha;
  oo.recompute = c.recompute;
  oo.precision = c.gemm_precision();
  oo.experts = ep ? &*ep : nullptr;
  std::vector<float> grad(p.size());
  // This rank's share of a batch's sequences (data parallelism). With expert or pipeline
  // parallelism a rank must take part in every forward of its groups, so an empty share runs the
  // batch's first sequence with zero weights (no loss, no gradient, no load counted) instead of
  // nothing: `idle` says so, and `o` is then changed to match.
  auto share_of = [&](const model::TokenBatch& whole, model::ObjectiveOptions& o, bool& idle) {
    idle = false;
    if (D == 1) return whole;
    const dist::Range r = dist::shard(int64_t(whole.lengths.size()), replica, D);
    if (r.size() > 0) return whole.sequences(size_t(r.begin), size_t(r.end));
    idle = true;
    model::TokenBatch b = whole.sequences(0, 1);
    b.weights.assign(size_t(b.targets()), 0.0f);
    o.balance_alpha = 0.0;
    o.weight_total = 1.0;  // any positive normalizer: every term is 0
    return b;
  };
  auto run_share = [&](const model::TokenBatch& whole, const model::ObjectiveOptions& o,
                       model::ModelGrads& g) -> model::StepResult {
    model::ObjectiveOptions so = o;
    bool idle = false;
    const model::TokenBatch share = share_of(whole, so, idle);
    if (idle && !ep) return empty_result(mc);
    model::StepResult r = model::forward_backward(mc, p.weights(), g, share, so);
    return idle ? empty_result(mc) : r;
  };
  // Pipeline parallelism: the step's micro-batches (this pipeline's shares) through the stages.
  auto run_pipeline = [&](const std::vector<model::TokenBatch>& whole, const model::ObjectiveOptions& o,
                          model::ModelGrads& g) {
    std::vector<model::TokenBatch> shares;
    std::vector<model::ObjectiveOptions> opts(whole.size(), o);
    std::vector<bool> idle(whole.size());
    for (size_t i = 0; i < whole.size(); ++i) {
      bool b = false;
      shares.push_back(share_of(whole[i], opts[i], b));
      idle[i] = b;
    }
    std::vector<model::StepResult> rs = pipeline->step(p.weights(), g, shares, opts);
    for (size_t i = 0; i < rs.size(); ++i) rs[i] = idle[i] ? empty_result(mc) : whole_shape(mc, std::move(rs[i]));
    return rs;
  };
  const bool tty = isatty(2);
  auto evaluate_here = [&]() -> double {
    model::ObjectiveOptions eo = oo;
    eo.backward = false;
    eo.grad_scale = 1.0f;
    eo.weight_total = 0.0;  // each validation batch is its own mean
    model::ModelWeights w = p.weights();
    model::ModelGrads none;
    return in.validate([&](const model::TokenBatch& b) { return model::forward_backward(mc, w, none, b, eo); });
  };
  // Without pipeline or expert parallelism rank 0 validates (every rank holds the same weights)
  // and tells the others the loss, which the patience decisions need on every rank. Otherwise
  // every rank validates its share of each batch (normalized by the whole batch's weight, so the
  // shares' losses add up) with the model's part it holds: through its expert group's exchanges,
  // and through the pipeline's stages in turn, the last one's loss summed over the job.
  auto evaluate = [&]() -> double {
    if (!in.validate) return NAN;
    double vl = NAN;
    if (ep || pipeline) {
      model::ObjectiveOptions eo = oo;
      eo.backward = false;
      eo.grad_scale = 1.0f;
      model::ModelGrads none;
      return in.validate([&](const model::TokenBatch& b) {
        double total = 0.0;
        for (float x : b.weights) total += x;
        eo.weight_total = b.weights.empty() ? double(b.targets()) : total;
        if (!pipeline) {
          model::StepResult r = run_share(b, eo, none);
          reduce_stats(dp_comm, r, false, D);
          return r;
        }
        model::ObjectiveOptions so = eo;
        bool idle = false;
        const model::TokenBatch share = share_of(b, so, idle);
        model::StepResult r = whole_shape(mc, pipeline->forward(p.weights(), share, so));
        if (idle) r = empty_result(mc);
        reduce_stats(comm, r, false, D);
        return r;
      });
    }
    if (root) vl = evaluate_here();
    comm.broadcast(&vl, sizeof vl, 0);
    return vl;
  };
  // Rank 0 writes the whole model `whole` with st's moments.
  auto write = [&](const model::Params& whole, const std::string& name) {
    st.data = loader.state();
    if (save_dtype != SaveDType::F32) st.master = whole.data();
    std::vector<std::pair<std::string, std::string>> extra = {{"train_config.json", config_text}};
    if (c.patience > 0) extra.emplace_back("patience.json", pat.dump());
    save_checkpoint(c.out, name, whole, st, in.tokenizer_dir, extra, int(c.keep), save_dtype);
    st.master.clear();
  };
  // Every rank calls save at the same steps; rank 0 writes. The optimizer state is gathered
  // whole within each part first (ZeRO-1), then rank 0 takes each tensor it does not hold
  // (weights and moments) from the lowest rank that holds it, and writes the whole model.
  auto save = [&](const std::string& name) {
    std::vector<float> m(p.size()), v(p.size());
    for (Part& part : parts) {
      const std::vector<float> om = part.opt->m(), ov = part.opt->v();
      for (auto [to, from] : {std::pair{&m, &om}, std::pair{&v, &ov}}) {
        std::copy(from->begin(), from->end(), to->begin() + part.mine.begin);
        if (zero) part.comm->allgather(std::span<float>(to->data() + part.base, size_t(part.len)), part.shards);
      }
    }
    if (ranks == 1) {
      st.m = std::move(m);
      st.v = std::move(v);
      write(p, name);
      return;
    }
    const auto sender = [&](const model::TensorSpec& t) {
      for (int q = 0; q < ranks; ++q)
        if (placement.region(t, q) >= 0) return q;
      fail("{}: no rank holds tensor {}", c.source, t.name);
    };
    constexpr int kSaveTag = 7;
    if (!root) {
      std::vector<float> out;
      for (const std::vector<float>* x : {&p.data(), &m, &v})
        for (const model::ParamInfo& i : p.infos())
          if (sender(i.spec) == rank) out.insert(out.end(), x->begin() + ptrdiff_t(i.offset), x->begin() + ptrdiff_t(i.offset + size_t(i.numel)));
      if (!out.empty()) {
        dist::Comm::Request req = comm.send_async(out, 0, kSaveTag);
        dist::Comm::wait(req);
      }
      return;
    }
    model::Params whole = model::Params::layout_only(mc);
    std::unordered_map<std::string_view, size_t> at;
    for (const model::ParamInfo& i : whole.infos()) at.emplace(i.name, i.offset);
    std::vector<float> wp(whole.size()), wm(whole.size()), wv(whole.size());
    copy_tensors(p, p.data().data(), whole, wp.data());
    copy_tensors(p, m.data(), whole, wm.data());
    copy_tensors(p, v.data(), whole, wv.data());
    for (int q = 1; q < ranks; ++q) {
      const model::Params theirs = model::Params::layout_only(mc, placement.of_rank(q));
      std::vector<const model::ParamInfo*> sent;
      size_t n = 0;
      for (const model::ParamInfo& i : theirs.infos())
        if (sender(i.spec) == q) {
          sent.push_back(&i);
          n += size_t(i.numel);
        }
      if (sent.empty()) continue;
      std::vector<float> buf(3 * n);
      comm.recv(buf, q, kSaveTag);
      const float* from = buf.data();
      for (std::vector<float>* to : {&wp, &wm, &wv})
        for (const model::ParamInfo* i : sent) {
          std::copy_n(from, i->numel, to->data() + at.at(i->name));
          from += i->numel;
        }
    }
    whole.data() = std::move(wp);
    st.m = std::move(wm);
    st.v = std::move(wv);
    write(whole, name);
    st.m.clear();
    st.v.clear();
  };
  auto report = [&] {
    if (root) write_report(metrics, c.out + "/report.html", in.name + ": " + c.out);
  };

  const double t_start = now_s();
  const int64_t first = st.step;
  const int64_t last = opts.stop_after >= 0 ? std::min(c.steps, opts.stop_after) : c.steps;
  std::vector<model::TokenBatch> micro(size_t(c.grad_accum));
  int64_t step_tokens_total = 0;  // targets processed since this process started
  for (int64_t step = first; step < last && !pat.stopped; ++step) {
    const double t_step = now_s();
    std::fill(grad.begin(), grad.end(), 0.0f);
    model::ModelGrads g = p.grads(grad.data());
    const int64_t a2a_before = ep ? ep->rows_sent : 0;
    const double a2a_s_before = ep ? ep->seconds : 0.0;
    const double a2a_hidden_before = ep ? ep->hidden_seconds : 0.0;
    // The step's micro-batches first: with weights (SFT masks) every one is normalized by the
    // whole step's Σ weight, so the step's loss is the mean over its trained tokens however the
    // samples fell into micro-batches. Without weights: the mean of equal-sized micro-batches.
    int64_t step_tokens = 0;
    double weight_total = 0.0;
    bool weighted = false;
    for (model::TokenBatch& b : micro) {
      b = loader.next();
      step_tokens += b.targets();
      weighted = weighted || !b.weights.empty();
      for (float x : b.weights) weight_total += x;
    }
    oo.weight_total = weighted ? weight_total : 0.0;
    oo.grad_scale = weighted ? 1.0f : 1.0f / float(c.grad_accum);
    model::StepResult agg;
    std::vector<model::StepResult> staged;
    if (pipeline) staged = run_pipeline(micro, oo, g);
    for (int64_t a = 0; a < c.grad_accum; ++a) {
      // Data parallelism: this rank's share of the micro-batch's sequences.
      model::StepResult r = pipeline ? std::move(staged[size_t(a)]) : run_share(micro[size_t(a)], oo, g);
      if (a == 0) {
        agg = r;
      } else {
        agg.loss += r.loss;
        agg.ce += r.ce;
        for (size_t k = 0; k < r.ce_mtp.size(); ++k) agg.ce_mtp[k] += r.ce_mtp[k];
        for (size_t j = 0; j < r.expert_load.size(); ++j)
          for (size_t e = 0; e < r.expert_load[j].size(); ++e) agg.expert_load[j][e] += r.expert_load[j][e];
      }
    }
    if (!weighted) {  // weighted micro-batch terms are already shares of the step's mean
      const double inv = 1.0 / double(c.grad_accum);
      agg.loss *= inv;
      agg.ce *= inv;
      for (double& x : agg.ce_mtp) x *= inv;
    }
    // Data parallelism: weighted shares add up to the step's mean; unweighted ranks each hold
    // the mean of an equal share, so the step's is their average (and so is its gradient).
    const double t_comm = now_s();
    double comm_s = 0.0;  // this step's time in collectives (data parallelism)
    // Expert parallelism: the routed rows each rank's experts ran (its group's load on its
    // experts) and the rows it sent to other ranks, for the metrics.
    std::vector<int64_t> ep_rows, a2a_rows;
    if (ep) {
      std::vector<int64_t> group_load;
      for (const auto& l : agg.expert_load) group_load.insert(group_load.end(), l.begin(), l.end());
      ep_comm.allreduce_sum(group_load);
      const model::ExpertRange mine_e = model::owned_experts(mc.n_routed_experts, ep->rank(), ep->size());
      ep_rows.assign(size_t(ranks), 0);
      a2a_rows.assign(size_t(ranks), 0);
      for (size_t i = 0; i < group_load.size(); ++i) {
        const int64_t e = int64_t(i) % mc.n_routed_experts;
        if (e >= mine_e.begin && e < mine_e.end) ep_rows[size_t(rank)] += group_load[i];
      }
      a2a_rows[size_t(rank)] = ep->rows_sent - a2a_before;
      comm.allreduce_sum(ep_rows);
      comm.allreduce_sum(a2a_rows);
    }
    reduce_stats(comm, agg, !weighted, D);
    // Pipeline parallelism: each rank's compute and waiting (the bubble) in this step.
    std::vector<double> pp_busy, pp_wait;
    dist::PipelineRuntime::Prediction pp_pred;
    if (pipeline) {
      pp_pred = pipeline->predict();
      pp_busy.assign(size_t(ranks), 0.0);
      pp_wait.assign(size_t(ranks), 0.0);
      pp_busy[size_t(rank)] = pipeline->times().busy_s;
      pp_wait[size_t(rank)] = pipeline->times().wait_s;
      comm.allreduce_sum(pp_busy);
      comm.allreduce_sum(pp_wait);
    }
    comm_s += now_s() - t_comm;
    const double lr = c.schedule.at(step);
    const float grad_k = weighted ? 1.0f : 1.0f / float(D);
    // Each part's gradient summed among the ranks holding it (this rank's ZeRO-1 shard of it),
    // then one global norm: Σ grad² over every region once (all its ZeRO shards, or without
    // ZeRO its first holder's whole gradient).
    double t = now_s(), sq = 0.0;
    for (Part& part : parts) {
      const std::span<float> g(grad.data() + part.base, size_t(part.len));
      if (zero) part.comm->reduce_scatter_sum(g, part.shards);
      else part.comm->allreduce_sum(g);
      if (grad_k != 1.0f)
        for (int64_t i = part.mine.begin; i < part.mine.end; ++i) grad[size_t(i)] *= grad_k;
      const double part_sq = part.opt->shard_grad_sq(grad.data() + part.mine.begin);
      if (zero || part.comm->rank() == 0) sq += part_sq;
    }
    comm.allreduce_sum(std::span<double>(&sq, 1));
    const double gnorm = std::sqrt(sq);
    comm_s += now_s() - t;
    for (Part& part : parts) part.opt->step_shard(p.data().data(), grad.data() + part.mine.begin, lr, gnorm);
    if (zero) {
      t = now_s();
      for (Part& part : parts)
        part.comm->allgather(std::span<float>(p.data().data() + part.base, size_t(part.len)), part.shards);
      comm_s += now_s() - t;
    }
    update_balance_bias(p, agg.moe_layers, agg.expert_load, c.bias_update_speed);
    st.step = step + 1;
    st.tokens += step_tokens;
    step_tokens_total += step_tokens;

    const double elapsed = now_s() - t_start, per_step = elapsed / double(step + 1 - first);
    const double tps = double(step_tokens_total) / elapsed;
    if (st.step % c.log_every == 0 || st.step == last || step == first) {
      nlohmann::json m = {{"type", "train"}, {"step", st.step}, {"tokens", st.tokens}, {"loss", agg.loss},
                          {"ce", agg.ce}, {"ce_mtp", agg.ce_mtp}, {"lr", lr}, {"grad_norm", gnorm},
                          {"tokens_per_s", tps}, {"moe", moe_json(agg)}};
      if (weighted) {
        m["trained_tokens"] = int64_t(weight_total);  // assistant tokens (the mask's ones) in this step
        m["trained_tokens_per_s"] = weight_total / (elapsed / double(step + 1 - first));
      }
      if (ep || pipeline) {
        m["rank_params"] = held;  // weights each rank holds: its stages' and its experts'
        m["model_params"] = int64_t(whole_layout.size());
      }
      if (ep) {
        m["ep_rows"] = ep_rows;    // routed rows each rank's experts ran (forward)
        m["a2a_rows"] = a2a_rows;  // rows each rank sent to others (dispatch, combine, backward)
        m["a2a_s"] = ep->seconds - a2a_s_before;  // rank 0's time in the exchanges (waits included)
        // Rank 0's shared-expert compute run while a dispatch was in flight (forward and backward).
        m["a2a_overlap_s"] = ep->hidden_seconds - a2a_hidden_before;
      }
      if (pipeline) {
        m["pp_busy_s"] = pp_busy;  // each rank's time in its F, B and W ops
        m["pp_wait_s"] = pp_wait;  // each rank's time waiting on other stages (the bubble)
        // The simulator's and the V3 formula's bubble for the costs measured in this step.
        nlohmann::json costs = nlohmann::json::array();
        for (const dist::PipeCosts& k : pp_pred.stage_costs) costs.push_back({{"F", k.F}, {"B", k.B}, {"W", k.W}});
        m["pp_costs_s"] = costs;  // per stage: mean F, B, W op times
        m["pp_sim_wait_s"] = pp_pred.sim_wait_s;
        m["pp_formula_s"] = pp_pred.formula_s;
      }
      if (ranks > 1) {
        m["ranks"] = ranks;
        m["comm_s"] = comm_s;  // rank 0's time in this step's collectives (waits included)
        m["step_s"] = now_s() - t_step;
      }
      log_line(m);
    }
    const bool talk = opts.progress && root;
    if (talk && (tty || st.step % c.log_every == 0 || st.step == last)) {
      const int width = 24, filled = int(double(width) * double(st.step) / double(c.steps));
      std::string bar(size_t(filled), '#');
      bar.resize(size_t(width), '.');
      double mv = 0;
      for (const auto& l : agg.expert_load) mv = std::max(mv, max_violation(l));
      std::fprintf(stderr, "%s[%s] %lld/%lld loss %.3f lr %.2e %.0f tok/s maxvio %.2f ETA %s%s",
                   tty ? "\r" : "", bar.c_str(), (long long)st.step, (long long)c.steps, agg.loss, lr, tps, mv,
                   hms(per_step * double(c.steps - st.step)).c_str(), tty ? "  " : "\n");
    }
    if (st.step % c.eval_every == 0 || st.step == c.steps) {
      const double vl = evaluate();
      if (std::isfinite(vl)) {
        log_line({{"type", "val"}, {"step", st.step}, {"val_loss", vl}});
        if (talk) std::fprintf(stderr, "%sstep %lld: validation loss %.4f (perplexity %.1f)\n", tty ? "\n" : "", (long long)st.step, vl, std::exp(vl));
        if (c.patience > 0) {
          if (vl < pat.best) {
            const std::string old = std::isfinite(pat.best) ? pat.best_name() : "";
            pat.best = vl;
            pat.best_step = st.step;
            pat.since = 0;
            save(pat.best_name());  // latest now points here, never at `old`
            if (root && !old.empty() && old != pat.best_name()) fs::remove_all(c.out + "/" + old);
          } else if (++pat.since >= c.patience) {
            pat.stopped = true;
            log_line({{"type", "stop"}, {"step", st.step}, {"best_step", pat.best_step},
                      {"best_val_loss", pat.best}});
            if (talk)
              std::fprintf(stderr, "%s: no better validation loss in %lld evaluations; stopping (best %.4f at step %lld)\n",
                           name_c, (long long)c.patience, pat.best, (long long)pat.best_step);
          }
        }
      }
      report();
    }
    if (!pat.stopped && st.step % c.save_every == 0 && st.step != last) save(fmt::format("step-{:06}", st.step));
  }
  if (mf) std::fclose(mf);
  if (opts.progress && root && tty) std::fprintf(stderr, "\n");
  const bool done = pat.stopped || last == c.steps;
  std::string name = done ? "final" : fmt::format("step-{:06}", st.step);
  if (done && c.patience > 0 && std::isfinite(pat.best)) {
    // OUT/final is the best-validation checkpoint; `latest` keeps the last state (which says the
    // run is over), so --resume of a finished run only redoes this copy.
    if (st.step != first) save(fmt::format("step-{:06}", st.step));
    if (root) copy_checkpoint(c.out, pat.best_name(), name);
  } else {
    save(name);
  }
  report();
  // Every rank leaves once the checkpoint is complete (a test or script that reads it after the
  // job ends, or a following job, must not race rank 0's writes).
  comm.barrier();
  if (opts.progress && root)
    std::fprintf(stderr, "%s: saved %s/%s%s (report: %s/report.html) in %s\n", name_c, c.out.c_str(), name.c_str(),
                 done && c.patience > 0 && std::isfinite(pat.best) ? fmt::format(" (= step {}, validation loss {:.4f})", pat.best_step, pat.best).c_str() : "",
                 c.out.c_str(), hms(now_s() - t_start).c_str());
  return c.out + "/" + name;
}

}  // namespace seek::train
