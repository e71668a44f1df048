// RetrainTrigger: what happens when a model should be retrained (its live data drifted, or its
// live accuracy fell below the configured floor): a warning in the log, a counter for /metrics,
// and a POST of a JSON body naming the model, version, reason, the drifted features with their
// statistics and where the logged payloads are, to the model's webhook (or the server's),
// rate-limited per model and reason and retried by a WebhookNotifier, so a failing webhook never
// touches serving.
// Thread safety: all methods are safe from any thread; Fire never blocks on the network.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "slipway/core/model_config.h"
#include "slipway/monitoring/prometheus_text.h"
#include "slipway/monitoring/webhook_notifier.h"
#include "slipway/serving/drift_source.h"

namespace slipway::monitoring {

class RetrainTrigger {
 public:
  struct Options {
    std::string default_webhook;  // used when a model's config names none; "" for none
    std::string payload_log_dir;  // named in the webhook body, "" when payloads are not logged
  };
  static core::Result<std::unique_ptr<RetrainTrigger>> Create(Options options);

  void OnDrift(const serving::DriftReport& report, const core::ModelConfig& config);
  void OnLowAccuracy(const std::string& model, int64_t version, double accuracy,
                     const core::ModelConfig& config);
  // slipway_retrain_triggers_total{model, reason} and the webhook counters.
  void WriteMetrics(PrometheusText& out) const;

 private:
  explicit RetrainTrigger(Options options) : options_(std::move(options)) {}
  void Fire(const std::string& model, const std::string& reason, const core::ModelConfig& config,
            std::string body);

  Options options_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> fired_;          // guarded by mu_
  // By URL and rate limit; guarded by mu_.
  std::map<std::string, std::unique_ptr<WebhookNotifier>> notifiers_;
};

}  // namespace slipway::monitoring
