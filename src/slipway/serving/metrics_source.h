// MetricsSource: renders the server's metrics in the Prometheus text format for GET /metrics.
// Implemented by monitoring::MetricsExporter; declared here so frontends depend on serving/ only.
// Thread safety: Render is safe from any thread; it reads counters and never blocks inference.
#pragma once

#include <string>

namespace slipway::serving {

class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  virtual std::string RenderMetrics() const = 0;
};

}  // namespace slipway::serving
