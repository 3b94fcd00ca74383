// Training metrics: one JSON object per line in OUT/metrics.jsonl ({"type":"train",...} per
// logged step, {"type":"val",...} per evaluation), rendered to OUT/report.html — a
// self-contained page (inline SVG, no scripts or downloads) with the loss curves, the learning
// rate, and per MoE layer a heatmap of each expert's load over time plus its MaxVio.
#pragma once
#include <string>

namespace seek::train {

// Reads `metrics_jsonl` and writes `html` (atomically). Lines that do not parse are skipped.
void write_report(const std::string& metrics_jsonl, const std::string& html, const std::string& title);

}  // namespace seek::train
