#include "dist/simulate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/io.h"
#include "core/json_config.h"

namespace seek::dist {

using json_config::check_keys;
using json_config::get;

SimHardware SimHardware::load(const std::string& path) {
  const nlohmann::json j = json_config::parse(read_file(path), path);
  check_keys(j, {"name", "gpus_per_node", "peak_bf16", "peak_fp8", "efficiency", "memory_bytes",
                 "ib_bandwidth", "nvlink_bandwidth"}, path);
  SimHardware h;
  get(j, {{"name", &h.name}, {"gpus_per_node", &h.gpus_per_node}, {"peak_bf16", &h.peak_bf16},
          {"peak_fp8", &h.peak_fp8}, {"efficiency", &h.efficiency}, {"memory_bytes", &h.memory_bytes},
          {"ib_bandwidth", &h.ib_bandwidth}, {"nvlink_bandwidth", &h.nvlink_bandwidth}}, path);
  for (auto [v, k] : {std::pair{h.peak_bf16, "peak_bf16"}, {h.peak_fp8, "peak_fp8"}, {h.memory_bytes, "memory_bytes"},
                      {h.ib_bandwidth, "ib_bandwidth"}, {h.nvlink_bandwidth, "nvlink_bandwidth"}})
    if (!(v > 0)) fail("{}: \"{}\" must be > 0", path, k);
  if (!(h.efficiency > 0 && h.efficiency <= 1)) fail("{}: \"efficiency\" must be in (0, 1], got {}", path, h.efficiency);
  if (h.gpus_per_node < 1) fail("{}: \"gpus_per_node\" must be >= 1", path);
  return h;
}

SimConfig SimConfig::load(const std::string& path) {
  const nlohmann::json j = json_config::parse(read_file(path), path);
  check_keys(j, {"model", "init", "train", "parallel", "simulate", "data", "out"}, path);
  SimConfig c;
  c.source = path;
  if (j.contains("init")) {
    std::string init;
    get(j, "init", init, path);
    c.model = model::ModelConfig::load(json_config::resolve(path, init));
  } else if (j.contains("model")) {
    c.model = model::ModelConfig::from_json(j["model"], path + ": model");
  } else {
    fail("{}: missing \"model\" (a config.json's fields) or \"init\" (a model directory)", path);
  }
  if (j.contains("train")) {
    const std::string w = path + ": train";
    // The trainer's batch_size is per step; other trainer fields are accepted and ignored here.
    get(j["train"], {{"seq_len", &c.seq_len}, {"batch_size", &c.global_batch}, {"micro_batch", &c.micro_batch},
                     {"precision", &c.precision}}, w);
  }
  if (j.contains("parallel")) {
    const std::string w = path + ": parallel";
    const nlohmann::json& p = j["parallel"];
    check_keys(p, {"gpus", "data", "expert", "pipeline", "zero", "schedule"}, w);
    int64_t data = 0;
    get(p, {{"gpus", &c.gpus}, {"data", &data}, {"expert", &c.expert}, {"pipeline", &c.pipeline}}, w);
    if (p.contains("schedule")) {
      std::string s;
      get(p, "schedule", s, w);
      c.schedules = {s};
    }
    if (c.gpus == 0) c.gpus = data * c.pipeline;
    if (data > 0 && data * c.pipeline != c.gpus)
      fail("{}: \"data\" {} × \"pipeline\" {} is not \"gpus\" {}", w, data, c.pipeline, c.gpus);
  }
  if (j.contains("simulate")) {
    const std::string w = path + ": simulate";
    check_keys(j["simulate"], {"max_nodes", "act_bytes_per_token_layer", "reported_gpu_hours_per_trillion_tokens"}, w);
    get(j["simulate"], {{"max_nodes", &c.max_nodes}, {"act_bytes_per_token_layer", &c.act_bytes_per_token_layer},
                        {"reported_gpu_hours_per_trillion_tokens", &c.reported_gpu_hours_per_t}}, w);
  }
  const std::string w = path;
  if (c.seq_len < 1 || c.global_batch < 1 || c.micro_batch < 1)
    fail("{}: train: \"seq_len\", \"batch_size\" and \"micro_batch\" must be >= 1", w);
  if (c.precision != "bf16" && c.precision != "fp8") fail("{}: train: \"precision\" must be bf16 or fp8, got \"{}\"", w, c.precision);
  if (c.gpus < 1 || c.pipeline < 1 || c.expert < 1) fail("{}: parallel: \"gpus\", \"pipeline\" and \"expert\" must be >= 1", w);
  if (c.gpus % c.pipeline != 0) fail("{}: parallel: {} GPUs do not split into pipelines of {}", w, c.gpus, c.pipeline);
  const int64_t data = c.gpus / c.pipeline;
  if (data % c.expert != 0) fail("{}: parallel: \"expert\" {} does not divide the {} data-parallel ranks", w, c.expert, data);
  if (c.model.n_routed_experts % c.expert != 0)
    fail("{}: parallel: the model's {} routed experts do not divide among {} ranks", w, c.model.n_routed_experts, c.expert);
  if (c.global_batch % (data * c.micro_batch) != 0)
    fail("{}: train: \"batch_size\" {} is not a multiple of {} data-parallel ranks × micro_batch {}", w,
         c.global_batch, data, c.micro_batch);
  if (c.pipeline > c.model.num_hidden_layers)
    fail("{}: parallel: {} pipeline stages for {} layers", w, c.pipeline, c.model.num_hidden_layers);
  return c;
}

namespace {

// Multiply-accumulates per token of each piece of the model (forward), and its parameters.
struct Piece {
  double linear_macs = 0, attn_macs = 0;  // attention core: causal, S/2 keys on average
  double params = 0, routed_params = 0;   // routed_params: all the layer's routed experts
  bool moe = false;
};

Piece layer_piece(const model::ModelConfig& m, int64_t layer, int64_t S) {
  const double H = double(m.hidden_size), nh = double(m.num_attention_heads);
  const double qn = double(m.qk_nope_head_dim), qr = double(m.qk_rope_head_dim), vd = double(m.v_head_dim);
  const double ql = double(m.q_lora_rank), kl = double(m.kv_lora_rank);
  Piece p;
  const double q = ql > 0 ? H * ql + ql * nh * (qn + qr) : H * nh * (qn + qr);
  const double mla = q + H * (kl + qr) + kl * nh * (qn + vd) + nh * vd * H;
  p.attn_macs = nh * (qn + qr) * double(S) / 2 + nh * vd * double(S) / 2;
  p.linear_macs = mla;
  p.params = mla;
  if (m.is_moe_layer(layer)) {
    const double E = double(m.n_routed_experts), k = double(m.num_experts_per_tok);
    const double expert = 3 * H * double(m.moe_intermediate_size);
    p.moe = true;
    p.linear_macs += H * E + (double(m.n_shared_experts) + k) * expert;
    p.params += H * E + double(m.n_shared_experts) * expert;
    p.routed_params = E * expert;
  } else {
    const double ffn = 3 * H * double(m.intermediate_size);
    p.linear_macs += ffn;
    p.params += ffn;
  }
  return p;
}

}  // namespace

std::vector<StageCost> stage_costs(const SimConfig& c, const SimHardware& h) {
  const model::ModelConfig& m = c.model;
  const int64_t L = m.num_hidden_layers, P = c.pipeline;
  const double n = double(c.micro_batch * c.seq_len), H = double(m.hidden_size), V = double(m.vocab_size);
  const double peak_lin = (c.precision == "fp8" ? h.peak_fp8 : h.peak_bf16) * h.efficiency;
  const double peak_attn = h.peak_bf16 * h.efficiency;
  // Units to place: each layer; the embedding rides with layer 0; head and MTP modules with the
  // last layer.
  std::vector<Piece> unit;
  for (int64_t l = 0; l < L; ++l) unit.push_back(layer_piece(m, l, c.seq_len));
  unit.front().params += V * H;
  Piece& last = unit.back();
  last.linear_macs += H * V;
  last.params += H * V + (m.tie_word_embeddings ? -H * V : 0.0);
  for (int64_t k = 0; k < m.num_nextn_predict_layers; ++k) {
    const Piece b = layer_piece(m, L + k, c.seq_len);
    last.linear_macs += 2 * H * H + b.linear_macs + H * V;  // eh_proj, its block, the shared head
    last.attn_macs += b.attn_macs;
    last.params += 2 * H * H + b.params;
    last.routed_params += b.routed_params;
    last.moe = last.moe || b.moe;
  }
  const auto seconds = [&](const Piece& p) {
    return 2 * n * (p.linear_macs / peak_lin + p.attn_macs / peak_attn);
  };
  // Contiguous stages minimizing the slowest one: binary search on its time, each candidate
  // checked by filling stages greedily.
  double lo = 0, hi = 0;
  for (const Piece& p : unit) lo = std::max(lo, seconds(p)), hi += seconds(p);
  const auto stages_needed = [&](double cap) {
    int64_t k = 1;
    double t = 0;
    for (const Piece& p : unit) {
      if (t > 0 && t + seconds(p) > cap) ++k, t = 0;
      t += seconds(p);
    }
    return k;
  };
  for (int it = 0; it < 100; ++it) {
    const double mid = (lo + hi) / 2;
    (stages_needed(mid) <= P ? hi : lo) = mid;
  }
  // Expert all-to-all of one MoE layer, one direction (dispatch in FP8: H bytes + a scale per
  // 128; combine in BF16: 2H): a token's rows cross InfiniBand once per remote node among the
  // at most `max_nodes` its experts span, then NVLink to each of its k experts' GPUs.
  const double nodes_ep = std::max(1.0, double(c.expert) / double(h.gpus_per_node));
  const double row = H + H / 128 * 4 + 2 * H, k = double(m.num_experts_per_tok);
  const double ib = nodes_ep > 1 ? n * std::min(k, double(c.max_nodes)) * (1 - 1 / nodes_ep) * row : 0.0;
  const double nvl = c.expert > 1 ? n * k * (1 - 1 / double(std::min<int64_t>(c.expert, h.gpus_per_node))) * row : 0.0;
  const double layer_a2a_s = std::max(ib / h.ib_bandwidth, nvl / h.nvlink_bandwidth);
  std::vector<StageCost> stages;
  StageCost cur;
  double t = 0;
  for (int64_t i = 0; i < L; ++i) {
    const Piece& p = unit[size_t(i)];
    const double s = seconds(p);
    const int64_t stages_left = P - int64_t(stages.size()) - 1;  // after the current one
    if (cur.layers > 0 && (t + s > hi * (1 + 1e-9) || L - i <= stages_left)) {
      stages.push_back(cur);
      cur = {};
      t = 0;
    }
    t += s;
    ++cur.layers;
    cur.linear_flops += 2 * n * p.linear_macs;
    cur.attn_flops += 2 * n * p.attn_macs;
    cur.params += p.params;
    cur.expert_params += p.routed_params / double(c.expert);
    if (p.moe) {
      const double blocks = i == L - 1 ? double(1 + m.num_nextn_predict_layers) : 1.0;  // + MTP's
      cur.moe_layers += int64_t(blocks);
      cur.a2a_bytes += blocks * ib;
      cur.a2a_s += blocks * layer_a2a_s;
    }
  }
  stages.push_back(cur);
  for (StageCost& s : stages) s.flops_f = s.linear_flops + s.attn_flops;
  return stages;
}

SimResult simulate_training(const SimConfig& c, const SimHardware& h, const std::string& schedule) {
  const std::vector<StageCost> st = stage_costs(c, h);
  const double peak_lin = (c.precision == "fp8" ? h.peak_fp8 : h.peak_bf16) * h.efficiency;
  const double peak_attn = h.peak_bf16 * h.efficiency;
  const int64_t data = c.gpus / c.pipeline;
  SimResult r;
  r.schedule = schedule;
  r.micro_batches = int(c.global_batch / (data * c.micro_batch));
  // The slowest stage sets every op's cost (a stage waits for its slowest neighbour anyway).
  const StageCost* worst = &st[0];
  double worst_t = 0;
  for (const StageCost& s : st) {
    const double t = s.linear_flops / peak_lin + s.attn_flops / peak_attn;
    if (t > worst_t) worst_t = t, worst = &s;
  }
  const double Fc = worst->linear_flops / peak_lin + worst->attn_flops / peak_attn;
  const double Bc = worst->linear_flops / peak_lin + 2 * worst->attn_flops / peak_attn;
  const double Wc = worst->linear_flops / peak_lin;
  // Forward: dispatch + combine; backward: the same volumes back.
  double a2a_f = 0;
  for (const StageCost& s : st) a2a_f = std::max(a2a_f, s.a2a_s);
  const double a2a_b = a2a_f;
  r.a2a_bytes_per_micro = 0;
  for (const StageCost& s : st) r.a2a_bytes_per_micro = std::max(r.a2a_bytes_per_micro, 2 * s.a2a_bytes);
  r.a2a_s_per_micro = a2a_f + a2a_b;
  r.compute_s_per_micro = Fc + Bc + Wc;
  const double n = double(c.micro_batch * c.seq_len), H = double(c.model.hidden_size);
  r.costs.F = Fc + a2a_f;
  r.costs.B = Bc + a2a_b;
  r.costs.W = Wc;
  r.costs.FB = schedule == "dualpipe" ? std::max(Fc + Bc + Wc, a2a_f + a2a_b) : 0.0;
  r.costs.p2p = n * H * 2 / h.ib_bandwidth;
  const PipeSchedule sched = make_schedule(schedule, int(c.pipeline), r.micro_batches);
  r.pipe = simulate_pipeline(sched, r.costs);
  r.step_s = r.pipe.step_time;
  r.bubble_share = r.pipe.bubble / r.step_s;
  const double tokens = double(c.global_batch * c.seq_len);
  r.tokens_per_s_gpu = tokens / r.step_s / double(c.gpus);
  double flops = 0;  // forward + backward of one step, all stages, all data-parallel ranks
  for (const StageCost& s : st) flops += 3 * s.linear_flops + 3 * s.attn_flops;
  flops *= double(r.micro_batches) * double(data);
  r.mfu = flops / r.step_s / (double(c.gpus) * h.peak_bf16);
  r.gpu_hours_per_t = 1e12 / r.tokens_per_s_gpu / 3600;
  // Memory of the fullest rank: its chunk(s) (DualPipe: stages r and P-1-r).
  const int P = int(c.pipeline);
  const double d_dense = double(data), d_expert = double(data / c.expert);
  for (int rank = 0; rank < P; ++rank) {
    std::vector<const StageCost*> mine = {&st[size_t(rank)]};
    if (sched.directions == 2) mine.push_back(&st[size_t(P - 1 - rank)]);
    double dense = 0, expert = 0, layers = 0;
    for (const StageCost* s : mine) dense += s->params, expert += s->expert_params, layers = std::max(layers, double(s->layers));
    const double w = 2 * (dense + expert), g = 4 * (dense + expert);
    const double o = 8 * dense / d_dense + 8 * expert / d_expert;  // FP32 master + BF16 m and v
    const double a = double(r.pipe.peak_in_flight[size_t(rank)]) * n * H * c.act_bytes_per_token_layer * layers;
    if (w + g + o + a > r.total_b) {
      r.weights_b = w, r.grads_b = g, r.optimizer_b = o, r.activations_b = a;
      r.total_b = w + g + o + a;
    }
  }
  return r;
}

std::string simulation_report(const SimConfig& c, const SimHardware& h, const std::vector<SimResult>& rs) {
  const model::ModelConfig& m = c.model;
  const std::vector<StageCost> st = stage_costs(c, h);
  std::string layers;
  for (const StageCost& s : st) layers += fmt::format("{}{}", layers.empty() ? "" : " ", s.layers);
  std::string out = fmt::format(
      "model: {} layers (+{} MTP), hidden {}, {} routed experts (top-{}) + {} shared, vocab {}\n"
      "hardware: {} ({} per node; {:.0f}/{:.0f} TFLOP/s BF16/FP8 at {:.0f}% efficiency; {:.0f} GB; IB {:.0f} GB/s, NVLink {:.0f} GB/s per GPU)\n"
      "layout: {} GPUs = pipeline {} × data {} (expert {} inside it, ZeRO-1); {} GEMMs; step {} × {} tokens, micro-batch {} × {}\n"
      "stages (layers): {}; tokens span at most {} nodes; activations {} B × hidden per token and layer\n",
      m.num_hidden_layers, m.num_nextn_predict_layers, m.hidden_size, m.n_routed_experts, m.num_experts_per_tok,
      m.n_shared_experts, m.vocab_size, h.name, h.gpus_per_node, h.peak_bf16 / 1e12, h.peak_fp8 / 1e12,
      100 * h.efficiency, h.memory_bytes / 1e9, h.ib_bandwidth / 1e9, h.nvlink_bandwidth / 1e9, c.gpus, c.pipeline,
      c.gpus / c.pipeline, c.expert, c.precision, c.global_batch, c.seq_len, c.micro_batch, c.seq_len, layers,
      c.max_nodes, c.act_bytes_per_token_layer);
  out += "\n| per rank | " ;
  for (const SimResult& r : rs) out += r.schedule + " | ";
  out += "\n|---|";
  for (size_t i = 0; i < rs.size(); ++i) out += "---|";
  out += "\n";
  const auto row = [&](const std::string& name, auto f) {
    out += "| " + name + " |";
    for (const SimResult& r : rs) out += " " + f(r) + " |";
    out += "\n";
  };
  const auto gb = [](double b) { return fmt::format("{:.1f} GB", b / 1e9); };
  row("micro-batches per step", [](const SimResult& r) { return std::to_string(r.micro_batches); });
  row("chunk F / B / W / F&B (ms)", [](const SimResult& r) {
    return fmt::format("{:.1f} / {:.1f} / {:.1f} / {}", 1e3 * r.costs.F, 1e3 * r.costs.B, 1e3 * r.costs.W,
                       r.costs.FB > 0 ? fmt::format("{:.1f}", 1e3 * r.costs.FB) : "–");
  });
  row("all-to-all per micro-batch (fwd+bwd)", [](const SimResult& r) {
    return fmt::format("{:.2f} GB, {:.1f} ms vs {:.1f} ms compute", r.a2a_bytes_per_micro / 1e9, 1e3 * r.a2a_s_per_micro,
                       1e3 * r.compute_s_per_micro);
  });
  row("pipeline bubble", [](const SimResult& r) {
    return fmt::format("{:.2f} s ({:.1f}% of the step)", r.pipe.bubble, 100 * r.bubble_share);
  });
  row("step time", [](const SimResult& r) { return fmt::format("{:.2f} s", r.step_s); });
  row("tokens/s per GPU", [](const SimResult& r) { return fmt::format("{:.0f}", r.tokens_per_s_gpu); });
  row("MFU (of BF16 peak)", [](const SimResult& r) { return fmt::format("{:.1f}%", 100 * r.mfu); });
  row("GPU-hours per trillion tokens", [&](const SimResult& r) {
    return c.reported_gpu_hours_per_t > 0
               ? fmt::format("{:.0f}K ({:.2f}× the reported {:.0f}K)", r.gpu_hours_per_t / 1e3,
                             r.gpu_hours_per_t / c.reported_gpu_hours_per_t, c.reported_gpu_hours_per_t / 1e3)
               : fmt::format("{:.0f}K", r.gpu_hours_per_t / 1e3);
  });
  row("weights (BF16)", [&](const SimResult& r) { return gb(r.weights_b); });
  row("gradients (FP32)", [&](const SimResult& r) { return gb(r.grads_b); });
  row("optimizer (ZeRO-1)", [&](const SimResult& r) { return gb(r.optimizer_b); });
  row("activations at the peak", [&](const SimResult& r) { return gb(r.activations_b); });
  row("memory of the fullest rank", [&](const SimResult& r) {
    return fmt::format("{} of {}{}", gb(r.total_b), gb(h.memory_bytes), r.total_b > h.memory_bytes ? " (does not fit)" : "");
  });
  return out;
}

}  // namespace seek::dist
