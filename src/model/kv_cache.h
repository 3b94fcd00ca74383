// MLA's KV cache: per token and layer only the compressed latent c_kv (kv_lora_rank) and the
// shared rope key k_pe (qk_rope_head_dim) — 576 values for V3 instead of 2·128·128 for MHA.
// Slots hold independent sequences (continuous batching); each slot has a fixed capacity.
// Entries are F32 (--precise, the fixture semantics) or BF16 (the engine's default, as model.py
// keeps its cache: half the bytes, and attention on bf16 dots, kernels/attention.h).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "model/config.h"

namespace seek::model {

class KVCache {
 public:
  // `mtp_layers`: layers for the MTP modules (num_hidden_layers + k) when they draft tokens.
  // `dtype`: F32 or BF16.
  KVCache(const ModelConfig& cfg, int n_slots, int64_t capacity, int64_t mtp_layers = 0,
          DType dtype = DType::F32);

  int n_slots() const { return n_slots_; }
  int64_t capacity() const { return capacity_; }
  int64_t width() const { return width_; }  // kv_lora_rank + qk_rope_head_dim
  int64_t layers() const { return n_layers_; }
  DType dtype() const { return dtype_; }
  int64_t element_bytes() const { return dtype_ == DType::BF16 ? 2 : 4; }
  int64_t bytes_per_token() const { return width_ * n_layers_ * element_bytes(); }
  int64_t length(int slot) const { return lengths_[size_t(slot)]; }
  void set_length(int slot, int64_t n) { lengths_[size_t(slot)] = n; }
  void clear(int slot) { lengths_[size_t(slot)] = 0; }

  // Row `pos` of layer `layer` in `slot`: [c_kv (kv_lora_rank) | k_pe (qk_rope_head_dim)]; rows
  // of one slot and layer are contiguous, width() entries apart. row() is for F32 caches,
  // row16() for BF16 ones, raw() for either.
  void* raw(int slot, int64_t layer, int64_t pos) const {
    return data_.get() + ((size_t(slot) * size_t(n_layers_) + size_t(layer)) * size_t(capacity_) +
                          size_t(pos)) * size_t(width_ * element_bytes());
  }
  float* row(int slot, int64_t layer, int64_t pos) const {
    return dtype_ == DType::F32 ? static_cast<float*>(raw(slot, layer, pos)) : nullptr;
  }
  uint16_t* row16(int slot, int64_t layer, int64_t pos) const {
    return dtype_ == DType::BF16 ? static_cast<uint16_t*>(raw(slot, layer, pos)) : nullptr;
  }

 private:
  int n_slots_;
  int64_t n_layers_, capacity_, width_;
  DType dtype_;
  std::vector<int64_t> lengths_;
  // Zeroed by calloc, which takes a large block as fresh mmap pages: memory is only committed
  // as positions are written, and a row never written reads as zeros (finite), not garbage.
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char[], Free> data_;
};

}  // namespace seek::model
