#include "train/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "core/io.h"

namespace seek::train {

namespace {

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> pts;
};

std::string line_chart(const std::string& title, const std::vector<Series>& series, bool log_y) {
  const double W = 640, H = 260, L = 60, R = 20, T = 30, B = 40;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto fy = [&](double y) { return log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (const Series& s : series)
    for (auto [x, y] : s.pts) {
      x0 = std::min(x0, x); x1 = std::max(x1, x);
      y0 = std::min(y0, fy(y)); y1 = std::max(y1, fy(y));
    }
  if (x0 > x1) return "";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (fy(y) - y0) / (y1 - y0) * (H - T - B); };
  std::string s = fmt::format("<svg width='{}' height='{}' xmlns='http://www.w3.org/2000/svg' font-family='sans-serif' font-size='11'>", W, H);
  s += fmt::format("<text x='{}' y='18' font-size='14' font-weight='bold'>{}</text>", L, title);
  s += fmt::format("<rect x='{}' y='{}' width='{}' height='{}' fill='none' stroke='#999'/>", L, T, W - L - R, H - T - B);
  for (int i = 0; i <= 4; ++i) {
    const double v = y0 + (y1 - y0) * i / 4.0, y = H - B - (H - T - B) * i / 4.0;
    s += fmt::format("<text x='{}' y='{}' text-anchor='end'>{:.3g}</text>", L - 4, y + 4, log_y ? std::pow(10.0, v) : v);
    const double xv = x0 + (x1 - x0) * i / 4.0;
    s += fmt::format("<text x='{}' y='{}' text-anchor='middle'>{:.0f}</text>", px(xv), H - B + 14, xv);
  }
  s += fmt::format("<text x='{}' y='{}' text-anchor='middle'>step</text>", (W + L) / 2, H - 8);
  int legend = 0;
  for (const Series& se : series) {
    if (se.pts.empty()) continue;
    std::string d;
    for (auto [x, y] : se.pts) d += fmt::format("{}{:.1f},{:.1f}", d.empty() ? "M" : " L", px(x), py(y));
    s += fmt::format("<path d='{}' fill='none' stroke='{}' stroke-width='1.5'/>", d, se.color);
    if (se.pts.size() < 40)
      for (auto [x, y] : se.pts) s += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='2.5' fill='{}'/>", px(x), py(y), se.color);
    s += fmt::format("<text x='{}' y='{}' fill='{}'>{}</text>", W - R - 150, T + 14 + 14 * legend++, se.color, se.name);
  }
  return s + "</svg>";
}

// Expert load share over time for one layer: rows experts, columns logged steps; colour is the
// load relative to the mean (white = balanced, red = overloaded, blue = underloaded).
std::string heatmap(const std::string& title, const std::vector<double>& steps,
                    const std::vector<std::vector<double>>& loads, const std::vector<double>& maxvio) {
  if (loads.empty()) return "";
  const size_t E = loads[0].size(), N = loads.size();
  const double cw = std::max(2.0, std::min(12.0, 560.0 / double(N))), ch = std::max(4.0, std::min(14.0, 160.0 / double(E)));
  const double L = 60, T = 30, W = L + cw * double(N) + 20, H = T + ch * double(E) + 40;
  std::string s = fmt::format("<svg width='{}' height='{}' xmlns='http://www.w3.org/2000/svg' font-family='sans-serif' font-size='11'>", W, H);
  s += fmt::format("<text x='{}' y='18' font-size='14' font-weight='bold'>{} (final MaxVio {:.2f})</text>", L, title, maxvio.empty() ? 0.0 : maxvio.back());
  for (size_t i = 0; i < N; ++i) {
    double mean = 0;
    for (double v : loads[i]) mean += v;
    mean /= double(E);
    for (size_t e = 0; e < E; ++e) {
      const double r = mean > 0 ? loads[i][e] / mean : 1.0;  // 1 = balanced
      const double t = std::clamp(std::log2(std::max(r, 1e-3)) / 2.0, -1.0, 1.0);
      const int c = int(255 * (1 - std::fabs(t)));
      const std::string col = t >= 0 ? fmt::format("rgb(255,{},{})", c, c) : fmt::format("rgb({},{},255)", c, c);
      s += fmt::format("<rect x='{:.1f}' y='{:.1f}' width='{:.1f}' height='{:.1f}' fill='{}'/>", L + cw * double(i), T + ch * double(e), cw, ch, col);
    }
  }
  s += fmt::format("<text x='{}' y='{}' text-anchor='end'>expert 0</text>", L - 4, T + ch - 2);
  s += fmt::format("<text x='{}' y='{}' text-anchor='end'>{}</text>", L - 4, T + ch * double(E) - 2, E - 1);
  s += fmt::format("<text x='{}' y='{}'>step {:.0f}</text>", L, H - 18, steps.front());
  s += fmt::format("<text x='{}' y='{}' text-anchor='end'>step {:.0f}</text>", L + cw * double(N), H - 18, steps.back());
  s += fmt::format("<text x='{}' y='{}'>red: above mean load, blue: below (log scale, ±4×)</text>", L, H - 4);
  return s + "</svg>";
}

}  // namespace

void write_report(const std::string& metrics_jsonl, const std::string& html, const std::string& title) {
  std::string text;
  try { text = read_file(metrics_jsonl); } catch (...) { return; }
  Series loss{"train loss", "#1f77b4", {}}, ce{"train CE (main)", "#2ca02c", {}}, mtp{"MTP CE", "#9467bd", {}},
      val{"validation loss", "#d62728", {}}, lr{"learning rate", "#ff7f0e", {}},
      val_acc{"held-out pairs", "#d62728", {}}, train_acc{"training batch", "#1f77b4", {}};
  std::map<int64_t, std::vector<std::vector<double>>> loads;
  std::map<int64_t, std::vector<double>> steps_of, maxvio;
  std::map<double, size_t> last_index;  // step → position, so a resumed run overwrites
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    const double step = j.value("step", 0.0);
    // "accuracy": a reward model's pairwise accuracy (`seek rm`), held out and per train batch.
    if (j.value("type", "") == "val") {
      val.pts.push_back({step, j.value("val_loss", 0.0)});
      if (j.contains("accuracy")) val_acc.pts.push_back({step, j.value("accuracy", 0.0)});
      continue;
    }
    if (j.value("type", "") != "train") continue;  // "data", "stop": not points of a curve
    if (j.contains("accuracy")) train_acc.pts.push_back({step, j.value("accuracy", 0.0)});
    loss.pts.push_back({step, j.value("loss", 0.0)});
    if (j.contains("ce")) ce.pts.push_back({step, j.value("ce", 0.0)});
    if (j.contains("ce_mtp") && !j["ce_mtp"].empty()) mtp.pts.push_back({step, j["ce_mtp"][0].get<double>()});
    lr.pts.push_back({step, j.value("lr", 0.0)});
    if (j.contains("moe"))
      for (const auto& m : j["moe"]) {
        const int64_t l = m.value("layer", int64_t(0));
        loads[l].push_back(m["load"].get<std::vector<double>>());
        steps_of[l].push_back(step);
        maxvio[l].push_back(m.value("maxvio", 0.0));
      }
  }
  std::string page = "<!doctype html><html><head><meta charset='utf-8'><title>" + title +
                     "</title></head><body style='font-family:sans-serif'><h2>" + title + "</h2>";
  page += line_chart("Loss (nats/token)", {loss, ce, mtp, val}, false) + "<br>";
  if (!val_acc.pts.empty() || !train_acc.pts.empty())
    page += line_chart("Pairwise accuracy (chosen scored above rejected)", {train_acc, val_acc}, false) + "<br>";
  page += line_chart("Learning rate", {lr}, false) + "<br>";
  std::vector<Series> mv;
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  size_t ci = 0;
  for (auto& [l, v] : maxvio) {
    Series s{"layer " + std::to_string(l), colors[ci++ % 8], {}};
    for (size_t i = 0; i < v.size(); ++i) s.pts.push_back({steps_of[l][i], v[i]});
    mv.push_back(s);
  }
  if (!mv.empty()) page += line_chart("MaxVio per MoE layer (max load / mean − 1)", mv, false) + "<br>";
  for (auto& [l, v] : loads) page += heatmap("Expert load, layer " + std::to_string(l), steps_of[l], v, maxvio[l]) + "<br>";
  page += "</body></html>\n";
  write_file_atomic(html, page);
}

void write_charts_report(const std::string& metrics_jsonl, const std::string& html,
                         const std::string& title, const std::vector<ReportChart>& charts) {
  std::string text;
  try { text = read_file(metrics_jsonl); } catch (...) { return; }
  std::vector<nlohmann::json> records;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) records.push_back(std::move(j));
  }
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  std::string page = "<!doctype html><html><head><meta charset='utf-8'><title>" + title +
                     "</title></head><body style='font-family:sans-serif'><h2>" + title + "</h2>";
  for (const ReportChart& c : charts) {
    std::vector<Series> series;
    for (size_t f = 0; f < c.fields.size(); ++f) {
      std::map<double, double> by_step;  // the last record of a step wins
      for (const nlohmann::json& j : records) {
        if (j.value("type", "") != c.type || !j.contains(c.fields[f].first)) continue;
        const nlohmann::json& v = j[c.fields[f].first];
        if (v.is_number()) by_step[j.value("step", 0.0)] = v.get<double>();
      }
      Series s{c.fields[f].second, colors[f % 8], {}};
      for (auto [x, y] : by_step) s.pts.push_back({x, y});
      series.push_back(std::move(s));
    }
    const std::string svg = line_chart(c.title, series, false);
    if (!svg.empty()) page += svg + "<br>";
  }
  page += "</body></html>\n";
  write_file_atomic(html, page);
}

}  // namespace seek::train
