#include "model/kv_cache.h"

#include "core/error.h"

namespace seek::model {

KVCache::KVCache(const ModelConfig& cfg, int n_slots, int64_t capacity, int64_t mtp_layers)
    : n_slots_(n_slots),
      n_layers_(cfg.num_hidden_layers + mtp_layers),
      capacity_(capacity),
      width_(cfg.kv_values_per_token_per_layer()),
      lengths_(size_t(n_slots), 0),
      data_(static_cast<float*>(std::calloc(size_t(n_slots) * size_t(n_layers_) * size_t(capacity),
                                            size_t(width_) * sizeof(float)))) {
  if (!data_) fail("KV cache: cannot allocate {} slots x {} positions", n_slots, capacity);
}

}  // namespace seek::model
