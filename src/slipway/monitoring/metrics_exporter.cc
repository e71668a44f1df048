#include "slipway/monitoring/metrics_exporter.h"

#include <set>

#include "slipway/monitoring/prometheus_text.h"
#include "slipway/monitoring/process_metrics.h"

namespace slipway::monitoring {

namespace {

using scheduler::Histogram;

template <size_t N>
void WriteHistogram(PrometheusText& out, const char* name, const Labels& labels,
                    const std::array<double, N>& bounds, const Histogram& h) {
  std::vector<uint64_t> counts = h.counts;
  counts.resize(N + 1, 0);
  out.Histogram(name, labels, std::vector<double>(bounds.begin(), bounds.end()), counts, h.sum);
}

double Micros(uint64_t ns) { return static_cast<double>(ns / 1000); }

}  // namespace

core::Result<std::unique_ptr<MetricsExporter>> MetricsExporter::Create(Options options) {
  if (options.inference == nullptr) {
    return core::Status::InvalidArgument("MetricsExporter needs an InferenceService");
  }
  return std::unique_ptr<MetricsExporter>(new MetricsExporter(options));
}

std::string MetricsExporter::RenderMetrics() const {
  PrometheusText out;
  auto stats = options_.inference->GetModelStatistics("", 0);
  std::vector<serving::ModelStatistics> models = stats.ok() ? *stats : std::vector<serving::ModelStatistics>{};
  auto labels = [](const serving::ModelStatistics& m) {
    return Labels{{"model", m.name}, {"version", m.version}};
  };
  struct Counter {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const serving::ModelStatistics&);
  };
  static const Counter kTriton[] = {
      {"nv_inference_request_success", "counter", "Successful inference requests (Triton's meaning)",
       [](const serving::ModelStatistics& m) { return static_cast<double>(m.stats.success.count); }},
      {"nv_inference_count", "counter", "Inferences performed: a batch of n counts n",
       [](const serving::ModelStatistics& m) { return static_cast<double>(m.stats.inference_count); }},
      {"nv_inference_exec_count", "counter", "Model executions (batches)",
       [](const serving::ModelStatistics& m) { return static_cast<double>(m.stats.execution_count); }},
      {"nv_inference_pending_request_count", "gauge", "Requests queued, not yet started",
       [](const serving::ModelStatistics& m) { return static_cast<double>(m.stats.pending); }},
      {"nv_inference_request_duration_us", "counter",
       "Cumulative end-to-end time of successful requests, microseconds",
       [](const serving::ModelStatistics& m) { return Micros(m.stats.success.ns); }},
      {"nv_inference_queue_duration_us", "counter",
       "Cumulative time successful requests waited in the queue, microseconds",
       [](const serving::ModelStatistics& m) { return Micros(m.stats.queue.ns); }},
      {"nv_inference_compute_input_duration_us", "counter",
       "Cumulative input preparation time, microseconds",
       [](const serving::ModelStatistics& m) { return Micros(m.stats.compute_input.ns); }},
      {"nv_inference_compute_infer_duration_us", "counter",
       "Cumulative model execution time, microseconds",
       [](const serving::ModelStatistics& m) { return Micros(m.stats.compute_infer.ns); }},
      {"nv_inference_compute_output_duration_us", "counter",
       "Cumulative output extraction time, microseconds",
       [](const serving::ModelStatistics& m) { return Micros(m.stats.compute_output.ns); }},
      {"nv_model_load_duration_secs", "gauge", "Time the version took to load and warm up, seconds",
       [](const serving::ModelStatistics& m) { return m.load_seconds; }},
      {"slipway_inflight_requests", "gauge", "Requests accepted and not yet answered",
       [](const serving::ModelStatistics& m) { return static_cast<double>(m.stats.in_flight); }},
      {"slipway_model_instances", "gauge", "Runtime instances serving the version now",
       [](const serving::ModelStatistics& m) { return static_cast<double>(m.instance_count); }},
  };
  for (const Counter& c : kTriton) {
    out.Family(c.name, c.type, c.help);
    for (const auto& m : models) out.Sample(c.name, labels(m), c.value(m));
  }
  out.Family("nv_inference_request_failure", "counter",
             "Failed inference requests by reason: REJECTED (queue full or timed out), CANCELED, "
             "BACKEND (the runtime failed), OTHER");
  for (const auto& m : models) {
    for (size_t r = 0; r < scheduler::kFailureReasons; ++r) {
      Labels l = labels(m);
      l.emplace_back("reason",
                     scheduler::FailureReasonName(static_cast<scheduler::FailureReason>(r)));
      out.Sample("nv_inference_request_failure", l, static_cast<double>(m.stats.failures[r]));
    }
  }
  struct Hist {
    const char* name;
    const char* help;
    const Histogram& (*get)(const scheduler::StatsSnapshot&);
  };
  static const Hist kHists[] = {
      {"slipway_request_duration_seconds", "End-to-end time of successful requests",
       [](const scheduler::StatsSnapshot& s) -> const Histogram& { return s.request_seconds; }},
      {"slipway_queue_duration_seconds", "Time successful requests waited in the queue",
       [](const scheduler::StatsSnapshot& s) -> const Histogram& { return s.queue_seconds; }},
      {"slipway_compute_input_duration_seconds", "Input preparation time per execution",
       [](const scheduler::StatsSnapshot& s) -> const Histogram& { return s.compute_input_seconds; }},
      {"slipway_compute_infer_duration_seconds", "Model execution time per execution",
       [](const scheduler::StatsSnapshot& s) -> const Histogram& { return s.compute_infer_seconds; }},
      {"slipway_compute_output_duration_seconds", "Output extraction time per execution",
       [](const scheduler::StatsSnapshot& s) -> const Histogram& { return s.compute_output_seconds; }},
  };
  for (const Hist& h : kHists) {
    out.Family(h.name, "histogram", h.help);
    for (const auto& m : models) {
      WriteHistogram(out, h.name, labels(m), scheduler::kLatencyBoundsSeconds, h.get(m.stats));
    }
  }
  out.Family("slipway_batch_size", "histogram", "Rows per model execution");
  for (const auto& m : models) {
    WriteHistogram(out, "slipway_batch_size", labels(m), scheduler::kBatchSizeBounds,
                   m.stats.batch_size);
  }
  std::set<std::string> names;
  for (const auto& m : models) names.insert(m.name);
  if (options_.ground_truth != nullptr) {
    out.Family("slipway_live_accuracy", "gauge",
               "Share of answers judged correct by fed-back ground truth, over the window");
    out.Family("slipway_live_mean_absolute_error", "gauge",
               "Mean absolute error of answers against fed-back ground truth, over the window");
    out.Family("slipway_feedback_rows_total", "counter", "Answers judged by fed-back ground truth");
    for (const auto& name : names) {
      auto acc = options_.ground_truth->Accuracy(name);
      if (!acc.ok()) continue;
      for (const auto& a : *acc) {
        const Labels l{{"model", name}, {"version", std::to_string(a.version)}};
        if (a.accuracy) out.Sample("slipway_live_accuracy", l, *a.accuracy);
        if (a.mean_abs_error) out.Sample("slipway_live_mean_absolute_error", l, *a.mean_abs_error);
        out.Sample("slipway_feedback_rows_total", l, static_cast<double>(a.feedback));
      }
    }
  }
  if (options_.routing != nullptr) {
    out.Family("slipway_rollout_running", "gauge",
               "1 while a canary rollout of the candidate version runs, else 0");
    out.Family("slipway_rollout_weight_percent", "gauge", "The candidate's share of traffic");
    for (const auto& name : names) {
      auto view = options_.routing->GetRouting(name);
      if (!view.ok() || view->rollout.candidate == 0) continue;
      const Labels l{{"model", name}, {"candidate", std::to_string(view->rollout.candidate)}};
      const bool running = view->rollout.state == "running";
      out.Sample("slipway_rollout_running", l, running ? 1 : 0);
      out.Sample("slipway_rollout_weight_percent", l,
                 running ? static_cast<double>(view->rollout.weight_percent) : 0);
    }
  }
  if (options_.drift != nullptr) {
    out.Family("slipway_model_drifting", "gauge", "1 when the last judged window drifted");
    out.Family("slipway_drift_windows_total", "counter", "Windows judged for drift");
    out.Family("slipway_drift_drifting_windows_total", "counter", "Windows judged to drift");
    out.Family("slipway_drift_rows_skipped_total", "counter",
               "Rows that drift detection left out, by reason: sample (not in the configured "
               "random share) or rate (over max_rows_per_second)");
    out.Family("slipway_drift_p_value", "gauge", "P-value of the last window's test per feature");
    out.Family("slipway_drift_statistic", "gauge",
               "Kolmogorov-Smirnov D or chi-squared statistic of the last window per feature");
    out.Family("slipway_drift_psi", "gauge", "Population stability index of the last window");
    out.Family("slipway_drift_detected", "gauge", "1 when the feature drifted in the last window");
    for (const auto& name : options_.drift->DriftModels()) {
      auto report = options_.drift->Drift(name);
      if (!report.ok()) continue;
      const Labels m{{"model", name}};
      out.Sample("slipway_model_drifting", m, report->drifting ? 1 : 0);
      out.Sample("slipway_drift_windows_total", m, static_cast<double>(report->windows));
      out.Sample("slipway_drift_drifting_windows_total", m,
                 static_cast<double>(report->drifting_windows));
      out.Sample("slipway_drift_rows_skipped_total", Labels{{"model", name}, {"reason", "sample"}},
                 static_cast<double>(report->rows_skipped_by_sample));
      out.Sample("slipway_drift_rows_skipped_total", Labels{{"model", name}, {"reason", "rate"}},
                 static_cast<double>(report->rows_skipped_by_rate));
      for (const auto& f : report->features) {
        const Labels l{{"model", name}, {"feature", f.name}, {"test", f.test}};
        out.Sample("slipway_drift_p_value", l, f.p_value);
        out.Sample("slipway_drift_statistic", l, f.statistic);
        out.Sample("slipway_drift_psi", l, f.psi);
        out.Sample("slipway_drift_detected", l, f.drift ? 1 : 0);
      }
    }
  }
  if (options_.extra) options_.extra(out);
  if (auto process = ReadProcessMetrics(); process.ok()) WriteProcessMetrics(*process, out);
  return out.Take();
}

}  // namespace slipway::monitoring
