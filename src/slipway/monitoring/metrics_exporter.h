// MetricsExporter: the server's metrics in the Prometheus text format, gathered at scrape time
// from the statistics every model version keeps, the live accuracy from fed-back ground truth,
// the routing layer's rollouts and the process itself.
//
// Per model version (labels model, version): Triton's nv_inference_* counters and gauges with
// Triton's meaning, so dashboards translate directly, and slipway_* histograms and gauges named
// by Prometheus conventions (seconds, _total). docs/metrics.md lists every series.
// Thread safety: Render is safe from any thread; it takes each model's statistics lock briefly.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "slipway/core/status.h"
#include "slipway/monitoring/prometheus_text.h"
#include "slipway/serving/drift_source.h"
#include "slipway/serving/ground_truth.h"
#include "slipway/serving/inference_service.h"
#include "slipway/serving/metrics_source.h"
#include "slipway/serving/routing_admin.h"

namespace slipway::monitoring {

class MetricsExporter : public serving::MetricsSource {
 public:
  struct Options {
    serving::InferenceService* inference = nullptr;  // not owned
    serving::GroundTruth* ground_truth = nullptr;    // not owned; may be null
    serving::RoutingAdmin* routing = nullptr;        // not owned; may be null
    const serving::DriftSource* drift = nullptr;     // not owned; may be null
    // Extra series appended by other parts (retraining triggers); may be empty.
    std::function<void(PrometheusText&)> extra;
  };
  static core::Result<std::unique_ptr<MetricsExporter>> Create(Options options);

  std::string RenderMetrics() const override;

 private:
  explicit MetricsExporter(Options options) : options_(options) {}
  Options options_;
};

}  // namespace slipway::monitoring
