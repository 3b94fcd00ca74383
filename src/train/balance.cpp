#include "train/balance.h"

#include <algorithm>
#include <string>

namespace seek::train {

int64_t update_balance_bias(model::Params& p, const std::vector<int64_t>& layers,
                            const std::vector<std::vector<int64_t>>& loads, double gamma) {
  if (gamma == 0.0) return 0;
  int64_t changed = 0;
  for (size_t j = 0; j < layers.size(); ++j) {
    const model::ParamInfo* info = p.find(model::TensorRole::RouterBias, layers[j]);
    if (!info) continue;  // not noaux_tc: no bias to steer
    float* b = p.data().data() + info->offset;
    const std::vector<int64_t>& l = loads[j];
    double mean = 0.0;
    for (int64_t x : l) mean += double(x);
    mean /= double(l.size());
    for (size_t e = 0; e < l.size(); ++e) {
      if (double(l[e]) > mean) b[e] -= float(gamma);
      else if (double(l[e]) < mean) b[e] += float(gamma);
      else continue;
      ++changed;
    }
  }
  return changed;
}

double max_violation(const std::vector<int64_t>& load) {
  if (load.empty()) return 0.0;
  double sum = 0.0;
  int64_t mx = 0;
  for (int64_t l : load) {
    sum += double(l);
    mx = std::max(mx, l);
  }
  return sum > 0 ? double(mx) / (sum / double(load.size())) - 1.0 : 0.0;
}

}  // namespace seek::train
