#include "model/kv_cache.h"

namespace seek::model {

KVCache::KVCache(const ModelConfig& cfg, int n_slots, int64_t capacity)
    : n_slots_(n_slots),
      n_layers_(cfg.num_hidden_layers),
      capacity_(capacity),
      width_(cfg.kv_values_per_token_per_layer()),
      lengths_(size_t(n_slots), 0),
      data_(new float[size_t(n_slots) * size_t(n_layers_) * size_t(capacity) * size_t(width_)]) {}

}  // namespace seek::model
