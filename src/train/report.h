// Training metrics: one JSON object per line in OUT/metrics.jsonl ({"type":"train",...} per
// logged step, {"type":"val",...} per evaluation), rendered to OUT/report.html — a
// self-contained page (inline SVG, no scripts or downloads) with the loss curves, the learning
// rate, and per MoE layer a heatmap of each expert's load over time plus its MaxVio.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace seek::train {

// Reads `metrics_jsonl` and writes `html` (atomically). Lines that do not parse are skipped.
void write_report(const std::string& metrics_jsonl, const std::string& html, const std::string& title);

// A page of line charts over the records of other trainers (`seek grpo`): each chart plots
// numeric fields of the records of one "type" against their "step" (a later record of a step
// replaces an earlier one, as after a resume). Missing fields are gaps.
struct ReportChart {
  std::string title;
  std::string type;  // records with this "type"
  std::vector<std::pair<std::string, std::string>> fields;  // (field, legend)
};
void write_charts_report(const std::string& metrics_jsonl, const std::string& html,
                         const std::string& title, const std::vector<ReportChart>& charts);

}  // namespace seek::train
