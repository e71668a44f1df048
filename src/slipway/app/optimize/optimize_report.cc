#include "slipway/app/optimize/optimize_report.h"

#include <fmt/format.h>

#include "slipway/core/json_writer.h"

namespace slipway::app::optimize {

namespace {

double Ratio(int64_t before, int64_t after) {
  return after > 0 ? static_cast<double>(before) / static_cast<double>(after) : 0.0;
}

void LatencyJson(core::JsonWriter& w, const LatencyFigures& f) {
  w.StartObject();
  w.Key("runs");
  w.Int(f.runs);
  w.Key("p50_us");
  w.Double(f.p50_us);
  w.Key("p90_us");
  w.Double(f.p90_us);
  w.Key("mean_us");
  w.Double(f.mean_us);
  w.Key("rows_per_second");
  w.Double(f.rows_per_second);
  w.EndObject();
}

void OptionalDouble(core::JsonWriter& w, std::optional<double> v) {
  if (v) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

std::string Bytes(int64_t b) {
  if (b >= 10 * 1024 * 1024) return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  if (b >= 10 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(b) / 1024.0);
  return fmt::format("{} B", b);
}

std::string Pct(double v) { return fmt::format("{:.2f}%", 100.0 * v); }

}  // namespace

double OptimizeReport::file_ratio() const { return Ratio(file_bytes_before, file_bytes_after); }
double OptimizeReport::weight_ratio() const { return Ratio(weight_bytes_before, weight_bytes_after); }
double OptimizeReport::data_file_ratio() const {
  if (data_file_bytes_before <= 0 || data_file_bytes_after <= 0) return 0;
  return Ratio(data_file_bytes_before, data_file_bytes_after);
}

std::string ReportJson(const OptimizeReport& r) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("input");
  w.String(r.input_path);
  w.Key("output");
  if (r.output_path.empty()) {
    w.Null();
  } else {
    w.String(r.output_path);
  }
  w.Key("candidate");
  if (r.candidate_model.empty()) {
    w.Null();
  } else {
    w.StartObject();
    w.Key("model");
    w.String(r.candidate_model);
    w.Key("version");
    w.Int(r.candidate_version);
    w.EndObject();
  }
  w.Key("method");
  w.String(r.method);
  w.Key("graph_optimization");
  if (r.graph_level.empty()) {
    w.Null();
  } else {
    w.String(r.graph_level);
  }
  w.Key("settings");
  w.StartObject();
  for (const auto& [k, v] : r.settings) {
    w.Key(k);
    w.String(v);
  }
  w.EndObject();
  w.Key("opset");
  w.Int(r.opset);
  w.Key("size");
  w.StartObject();
  w.Key("file_bytes_before");
  w.Int(r.file_bytes_before);
  w.Key("file_bytes_after");
  w.Int(r.file_bytes_after);
  w.Key("file_ratio");
  w.Double(r.file_ratio());
  w.Key("weight_bytes_before");
  w.Int(r.weight_bytes_before);
  w.Key("weight_bytes_after");
  w.Int(r.weight_bytes_after);
  w.Key("weight_ratio");
  w.Double(r.weight_ratio());
  w.Key("data_file");
  if (r.data_file.empty()) {
    w.Null();
  } else {
    w.String(r.data_file);
  }
  w.Key("data_file_bytes_before");
  w.Int(r.data_file_bytes_before);
  w.Key("data_file_bytes_after");
  w.Int(r.data_file_bytes_after);
  w.EndObject();
  w.Key("rewrite");
  w.StartObject();
  w.Key("nodes");
  w.StartArray();
  for (const auto& n : r.rewrite.rewritten) w.String(n);
  w.EndArray();
  w.Key("weights");
  w.Int(r.rewrite.weights);
  w.Key("activations");
  w.Int(r.rewrite.activations);
  w.Key("skipped");
  w.StartArray();
  for (const auto& [what, why] : r.rewrite.skipped) {
    w.StartObject();
    w.Key("what");
    w.String(what);
    w.Key("why");
    w.String(why);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.Key("performance");
  w.StartObject();
  w.Key("intra_op_threads");
  w.Int(r.intra_op_threads);
  w.Key("points");
  w.StartArray();
  for (const auto& p : r.latency) {
    w.StartObject();
    w.Key("batch");
    w.Int(p.batch);
    w.Key("before");
    LatencyJson(w, p.before);
    w.Key("after");
    LatencyJson(w, p.after);
    w.Key("speedup");
    w.Double(p.speedup());
    w.Key("throughput_ratio");
    w.Double(p.before.rows_per_second > 0 ? p.after.rows_per_second / p.before.rows_per_second : 0);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.Key("accuracy");
  if (!r.accuracy) {
    w.Null();
  } else {
    const Agreement& a = *r.accuracy;
    w.StartObject();
    w.Key("eval_set");
    w.String(a.eval_source);
    w.Key("examples");
    w.Int(a.examples);
    w.Key("judged_output");
    w.String(a.judged_output);
    w.Key("top1_agreement");
    w.Double(a.top1_agreement());
    w.Key("labelled");
    w.Int(a.labelled);
    w.Key("accuracy_before");
    OptionalDouble(w, a.accuracy_before());
    w.Key("accuracy_after");
    OptionalDouble(w, a.accuracy_after());
    w.Key("outputs");
    w.StartArray();
    for (const auto& o : a.outputs) {
      w.StartObject();
      w.Key("name");
      w.String(o.name);
      w.Key("datatype");
      w.String(o.datatype);
      w.Key("max_abs_diff");
      w.Double(o.max_abs);
      w.Key("mean_abs_diff");
      w.Double(o.mean_abs);
      w.Key("equal_share");
      w.Double(o.values ? static_cast<double>(o.equal) / static_cast<double>(o.values) : 0.0);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.Key("notes");
  w.StartArray();
  for (const auto& n : r.notes) w.String(n);
  for (const auto& n : r.rewrite.notes) w.String(n);
  w.EndArray();
  w.EndObject();
  std::string out = w.Take();
  out += '\n';
  return out;
}

std::string ReportMarkdown(const OptimizeReport& r) {
  std::string md = fmt::format("# slipway optimize: {}\n\n", r.input_path);
  md += fmt::format("- method: {}{}\n", r.method,
                    r.graph_level.empty() ? "" : fmt::format("; ONNX Runtime graph level `{}`", r.graph_level));
  if (!r.output_path.empty()) md += fmt::format("- output: `{}`\n", r.output_path);
  if (!r.candidate_model.empty()) {
    md += fmt::format("- candidate: model `{}` version {}\n", r.candidate_model, r.candidate_version);
  }
  md += fmt::format("- opset {}; nodes rewritten: {}; weight tensors converted: {}; activations quantized: {}\n\n",
                    r.opset, r.rewrite.rewritten.size(), r.rewrite.weights, r.rewrite.activations);
  md += "## Size\n\n| | before | after | smaller by |\n|---|---:|---:|---:|\n";
  md += fmt::format("| model file | {} | {} | {:.2f}x |\n", Bytes(r.file_bytes_before), Bytes(r.file_bytes_after), r.file_ratio());
  md += fmt::format("| weights (initializers) | {} | {} | {:.2f}x |\n\n", Bytes(r.weight_bytes_before),
                    Bytes(r.weight_bytes_after), r.weight_ratio());
  if (!r.data_file.empty()) {
    md.resize(md.size() - 1);  // the row joins the table above
    md += fmt::format("| weights file (`{}`) | {} | {} | {} |\n\n", r.data_file,
                      r.data_file_bytes_before > 0 ? Bytes(r.data_file_bytes_before) : std::string("inline"),
                      Bytes(r.data_file_bytes_after),
                      r.data_file_ratio() > 0 ? fmt::format("{:.2f}x", r.data_file_ratio()) : std::string("—"));
  }
  if (!r.latency.empty()) {
    md += fmt::format("## Speed (in-process ONNX Runtime, {} intra-op thread{}, one run on this machine)\n\n",
                      r.intra_op_threads, r.intra_op_threads == 1 ? "" : "s");
    md += "| batch | p50 before (µs) | p50 after (µs) | speedup | rows/s before | rows/s after |\n";
    md += "|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& p : r.latency) {
      md += fmt::format("| {} | {:.1f} | {:.1f} | {:.2f}x | {:.0f} | {:.0f} |\n", p.batch, p.before.p50_us,
                        p.after.p50_us, p.speedup(), p.before.rows_per_second, p.after.rows_per_second);
    }
    md += "\n";
  }
  if (r.accuracy) {
    const Agreement& a = *r.accuracy;
    md += fmt::format("## Accuracy against the original\n\nEvaluation set: {} ({} examples). Judged output: `{}`.\n\n",
                      a.eval_source, a.examples, a.judged_output);
    md += fmt::format("- top-1 agreement: **{}** ({} of {})\n", Pct(a.top1_agreement()), a.top1_agree, a.examples);
    if (a.labelled > 0) {
      md += fmt::format("- task accuracy on {} labelled examples: {} before, {} after\n", a.labelled,
                        Pct(*a.accuracy_before()), Pct(*a.accuracy_after()));
    }
    md += "\n| output | datatype | max abs diff | mean abs diff | equal values |\n|---|---|---:|---:|---:|\n";
    for (const auto& o : a.outputs) {
      md += fmt::format("| `{}` | {} | {:.6g} | {:.6g} | {} |\n", o.name, o.datatype, o.max_abs, o.mean_abs,
                        Pct(o.values ? static_cast<double>(o.equal) / static_cast<double>(o.values) : 0.0));
    }
    md += "\n";
  }
  if (!r.rewrite.skipped.empty()) {
    md += "## Left as they were\n\n";
    for (const auto& [what, why] : r.rewrite.skipped) md += fmt::format("- {}: {}\n", what, why);
    md += "\n";
  }
  if (!r.notes.empty() || !r.rewrite.notes.empty()) {
    md += "## Notes\n\n";
    for (const auto& n : r.notes) md += "- " + n + "\n";
    for (const auto& n : r.rewrite.notes) md += "- " + n + "\n";
    md += "\n";
  }
  return md;
}

std::string ReportText(const OptimizeReport& r) {
  std::string t = fmt::format("{}: {}{}\n", r.input_path, r.method,
                              r.graph_level.empty() ? "" : "; ONNX Runtime graph level " + r.graph_level);
  t += fmt::format("  size     file {} -> {} ({:.2f}x smaller), weights {} -> {} ({:.2f}x)\n",
                   Bytes(r.file_bytes_before), Bytes(r.file_bytes_after), r.file_ratio(),
                   Bytes(r.weight_bytes_before), Bytes(r.weight_bytes_after), r.weight_ratio());
  if (!r.data_file.empty()) {
    t += fmt::format("  weights  in {} beside the model: {}{}\n", r.data_file, Bytes(r.data_file_bytes_after),
                     r.data_file_ratio() > 0
                         ? fmt::format(" ({} before, {:.2f}x smaller)", Bytes(r.data_file_bytes_before), r.data_file_ratio())
                         : std::string());
  }
  t += fmt::format("  rewrite  {} nodes, {} weight tensors, {} activations; {} left as they were\n",
                   r.rewrite.rewritten.size(), r.rewrite.weights, r.rewrite.activations, r.rewrite.skipped.size());
  for (const auto& p : r.latency) {
    t += fmt::format("  batch {:<3} p50 {:.1f} -> {:.1f} us ({:.2f}x), {:.0f} -> {:.0f} rows/s\n", p.batch,
                     p.before.p50_us, p.after.p50_us, p.speedup(), p.before.rows_per_second,
                     p.after.rows_per_second);
  }
  if (r.accuracy) {
    const Agreement& a = *r.accuracy;
    t += fmt::format("  accuracy top-1 agreement {} on {} examples ({})", Pct(a.top1_agreement()), a.examples,
                     a.judged_output);
    if (a.labelled > 0) t += fmt::format(", task accuracy {} -> {}", Pct(*a.accuracy_before()), Pct(*a.accuracy_after()));
    t += "\n";
    for (const auto& o : a.outputs) {
      t += fmt::format("           {}: max |diff| {:.4g}, mean |diff| {:.4g}\n", o.name, o.max_abs, o.mean_abs);
    }
  }
  for (const auto& n : r.notes) t += "  note     " + n + "\n";
  for (const auto& n : r.rewrite.notes) t += "  note     " + n + "\n";
  if (!r.output_path.empty()) t += "  wrote    " + r.output_path + "\n";
  return t;
}

}  // namespace slipway::app::optimize
