// MLA's KV cache: per token and layer only the compressed latent c_kv (kv_lora_rank) and the
// shared rope key k_pe (qk_rope_head_dim) — 576 values for V3 instead of 2·128·128 for MHA.
// Slots hold independent sequences (continuous batching); each slot has a fixed capacity.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "model/config.h"

namespace seek::model {

class KVCache {
 public:
  using Element = float;  // the stored type of a cache entry

  // `mtp_layers`: layers for the MTP modules (num_hidden_layers + k) when they draft tokens.
  KVCache(const ModelConfig& cfg, int n_slots, int64_t capacity, int64_t mtp_layers = 0);

  int n_slots() const { return n_slots_; }
  int64_t capacity() const { return capacity_; }
  int64_t width() const { return width_; }  // kv_lora_rank + qk_rope_head_dim
  int64_t layers() const { return n_layers_; }
  int64_t bytes_per_token() const { return width_ * n_layers_ * int64_t(sizeof(Element)); }
  int64_t length(int slot) const { return lengths_[size_t(slot)]; }
  void set_length(int slot, int64_t n) { lengths_[size_t(slot)] = n; }
  void clear(int slot) { lengths_[size_t(slot)] = 0; }

  // Row `pos` of layer `layer` in `slot`: [c_kv (kv_lora_rank) | k_pe (qk_rope_head_dim)].
  float* row(int slot, int64_t layer, int64_t pos) {
    return data_.get() + ((size_t(slot) * size_t(n_layers_) + size_t(layer)) * size_t(capacity_) +
                           size_t(pos)) * size_t(width_);
  }
  const float* row(int slot, int64_t layer, int64_t pos) const {
    return const_cast<KVCache*>(this)->row(slot, layer, pos);
  }

 private:
  int n_slots_;
  int64_t n_layers_, capacity_, width_;
  std::vector<int64_t> lengths_;
  // Zeroed by calloc, which takes a large block as fresh mmap pages: memory is only committed
  // as positions are written, and a row never written reads as zeros (finite), not garbage.
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> data_;
};

}  // namespace seek::model
