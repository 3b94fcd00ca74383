#include "model/kv_cache.h"

#include "core/error.h"

namespace seek::model {

KVCache::KVCache(const ModelConfig& cfg, int n_slots, int64_t capacity, int64_t mtp_layers,
                 DType dtype)
    : n_slots_(n_slots),
      n_layers_(cfg.num_hidden_layers + mtp_layers),
      capacity_(capacity),
      width_(cfg.kv_values_per_token_per_layer()),
      dtype_(dtype),
      lengths_(size_t(n_slots), 0) {
  if (dtype != DType::F32 && dtype != DType::BF16)
    fail("KV cache: entries are F32 or BF16, not {}", dtype_name(dtype));
  data_.reset(static_cast<char*>(std::calloc(size_t(n_slots) * size_t(n_layers_) * size_t(capacity),
                                             size_t(width_ * element_bytes()))));
  if (!data_) fail("KV cache: cannot allocate {} slots x {} positions", n_slots, capacity);
}

}  // namespace seek::model
