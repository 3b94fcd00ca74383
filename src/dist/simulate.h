// `seek simulate`: the training step of a DeepSeek model on a GPU cluster, on paper. The model's
// geometry gives each pipeline stage's FLOPs and parameters, the hardware file the peak rates,
// bandwidths and memory, the parallel layout (pipeline P, expert E, data D) how they divide; the
// pipeline schedule (1F1B or DualPipe, pipeline_schedule.h) run by the simulator
// (pipeline_sim.h) gives the bubble, the step time and the activations held. Per rank it prints
// the memory (parameters, gradients, optimizer state, activations), the expert all-to-all volume
// per micro-batch and the step time, tokens/s per GPU, MFU and GPU-hours per trillion tokens,
// next to the V3 report's figures where they exist (V3: 2048 H800, P16 DualPipe, E64, ZeRO-1;
// 180K H800 GPU-hours per trillion tokens).
//
// The cost model (every assumption is a field of SimHardware or SimConfig, printed with the
// result):
// - A chunk's compute: its FLOPs at `efficiency` × the peak of its precision (FP8 GEMMs for the
//   linear layers under "fp8", BF16 otherwise; the attention core in BF16). Backward: B (input
//   gradients) = the forward's linear FLOPs + 2× its attention core, W (weight gradients) = the
//   forward's linear FLOPs.
// - Expert all-to-all per MoE layer and micro-batch: each token goes to at most `max_nodes`
//   nodes (V3's node-limited routing: 4), the remote ones over InfiniBand, then over NVLink to
//   its k experts' GPUs (dispatch FP8: H bytes + scales, combine BF16: 2H bytes), forward and
//   again backward. DualPipe overlaps it with the other
//   chunk's compute (F&B = max(compute, communication) of the pair); 1F1B does not.
// - Pipeline p2p: a micro-batch's hidden states (BF16) to the next stage over InfiniBand.
// - Memory: working weights BF16; weight gradients FP32; ZeRO-1 shards the FP32 master weights
//   and the AdamW moments (BF16, as V3) over the data-parallel ranks holding the same weights;
//   activations per token and layer `act_bytes_per_token_layer` (×H) for each micro-batch chunk
//   in flight at the schedule's peak.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dist/pipeline_sim.h"
#include "model/config.h"

namespace seek::dist {

struct SimHardware {
  std::string name;
  int gpus_per_node = 8;
  double peak_bf16 = 0, peak_fp8 = 0;  // dense FLOP/s per GPU
  double efficiency = 0.6;             // achieved fraction of peak in the GEMMs
  double memory_bytes = 0;             // per GPU
  double ib_bandwidth = 0;             // bytes/s per GPU across nodes
  double nvlink_bandwidth = 0;         // bytes/s per GPU within a node
  static SimHardware load(const std::string& path);
};

struct SimConfig {
  model::ModelConfig model;
  std::string source;
  int64_t seq_len = 4096;
  int64_t global_batch = 0;  // sequences per optimizer step
  int64_t micro_batch = 1;   // sequences per micro-batch
  std::string precision = "fp8";
  int64_t gpus = 0, pipeline = 1, expert = 1;  // data-parallel ranks: gpus / pipeline
  std::vector<std::string> schedules = {"1f1b", "dualpipe"};
  int max_nodes = 4;                       // nodes a token's experts may span (V3: 4)
  double act_bytes_per_token_layer = 24;   // × hidden size, per cached micro-batch chunk
  double reported_gpu_hours_per_t = 0;     // the figure to compare with (V3: 180,000)
  // "model": a config.json's fields, or "init": a model directory (its config.json).
  static SimConfig load(const std::string& path);
};

struct StageCost {
  int64_t layers = 0, moe_layers = 0;
  double flops_f = 0;                // forward FLOPs of one micro-batch through the stage
  double linear_flops = 0, attn_flops = 0;
  double params = 0, expert_params = 0;  // per GPU: non-expert, and its share of routed experts
  double a2a_bytes = 0;              // InfiniBand bytes of one direction (dispatch + combine), one micro-batch
  double a2a_s = 0;                  // its time (InfiniBand and NVLink legs in parallel)
};

struct SimResult {
  std::string schedule;
  int micro_batches = 0;             // per data-parallel rank and step
  PipeCosts costs;                   // of the slowest stage, seconds
  PipeSimResult pipe;
  double step_s = 0, tokens_per_s_gpu = 0, mfu = 0, gpu_hours_per_t = 0;
  double bubble_share = 0;           // bubble / step
  double weights_b = 0, grads_b = 0, optimizer_b = 0, activations_b = 0, total_b = 0;  // per GPU
  double a2a_bytes_per_micro = 0, a2a_s_per_micro = 0, compute_s_per_micro = 0;
};

// The stages of `c`'s pipeline, layer counts balanced (embedding with the first, head and MTP
// with the last).
std::vector<StageCost> stage_costs(const SimConfig& c, const SimHardware& h);
SimResult simulate_training(const SimConfig& c, const SimHardware& h, const std::string& schedule);
// The printed report: assumptions, one column per schedule.
std::string simulation_report(const SimConfig& c, const SimHardware& h, const std::vector<SimResult>& r);

}  // namespace seek::dist
