#include "slipway/monitoring/retrain_trigger.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "slipway/core/json_writer.h"

namespace slipway::monitoring {

core::Result<std::unique_ptr<RetrainTrigger>> RetrainTrigger::Create(Options options) {
  if (!options.default_webhook.empty()) {
    WebhookNotifier::Options probe;
    probe.url = options.default_webhook;
    auto checked = WebhookNotifier::Create(probe);
    if (!checked.ok()) return checked.status();
  }
  return std::unique_ptr<RetrainTrigger>(new RetrainTrigger(std::move(options)));
}

void RetrainTrigger::Fire(const std::string& model, const std::string& reason,
                          const core::ModelConfig& config, std::string body) {
  const std::string url = config.monitoring.retrain.webhook.empty()
                              ? options_.default_webhook
                              : config.monitoring.retrain.webhook;
  std::lock_guard<std::mutex> lock(mu_);
  ++fired_[{model, reason}];
  if (url.empty()) return;
  // One notifier per URL and rate limit, so each model keeps its own min_interval_seconds.
  const std::string slot = url + " every " + std::to_string(config.monitoring.retrain.min_interval_seconds) + "s";
  auto& notifier = notifiers_[slot];
  if (notifier == nullptr) {
    WebhookNotifier::Options o;
    o.url = url;
    o.min_interval_seconds = config.monitoring.retrain.min_interval_seconds;
    auto created = WebhookNotifier::Create(o);
    if (!created.ok()) {
      spdlog::error("model '{}': retraining webhook '{}': {}", model, url,
                    created.status().message());
      notifiers_.erase(slot);
      return;
    }
    notifier = std::move(created).value();
  }
  notifier->Notify(model + "/" + reason, std::move(body));
}

void RetrainTrigger::OnDrift(const serving::DriftReport& report, const core::ModelConfig& config) {
  std::string drifted;
  core::JsonWriter w;
  w.StartObject();
  w.Key("event");
  w.String("retraining_suggested");
  w.Key("reason");
  w.String("drift");
  w.Key("model");
  w.String(report.model);
  w.Key("version");
  w.Int(report.version);
  w.Key("time_ms");
  w.Int(report.judged_at_ms);
  w.Key("drifted_features");
  w.StartArray();
  for (const auto& f : report.features) {
    if (!f.drift) continue;
    w.String(f.name);
    drifted += (drifted.empty() ? "" : ", ") + f.name;
  }
  w.EndArray();
  w.Key("statistics");
  w.StartArray();
  for (const auto& f : report.features) {
    w.StartObject();
    w.Key("feature");
    w.String(f.name);
    w.Key("test");
    w.String(f.test);
    w.Key("statistic");
    w.Double(f.statistic);
    w.Key("p_value");
    w.Double(f.p_value);
    w.Key("psi");
    w.Double(f.psi);
    w.Key("drift");
    w.Bool(f.drift);
    w.EndObject();
  }
  w.EndArray();
  w.Key("windows");
  w.Uint(report.windows);
  w.Key("drifting_windows");
  w.Uint(report.drifting_windows);
  w.Key("payload_log");
  w.String(options_.payload_log_dir);
  w.EndObject();
  spdlog::warn("model '{}' version {}: live data drifted ({}); retraining is suggested",
               report.model, report.version, drifted);
  Fire(report.model, "drift", config, w.Take());
}

void RetrainTrigger::OnLowAccuracy(const std::string& model, int64_t version, double accuracy,
                                   const core::ModelConfig& config) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("event");
  w.String("retraining_suggested");
  w.Key("reason");
  w.String("accuracy");
  w.Key("model");
  w.String(model);
  w.Key("version");
  w.Int(version);
  w.Key("time_ms");
  w.Int(std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
  w.Key("accuracy");
  w.Double(accuracy);
  w.Key("min_accuracy");
  w.Double(config.monitoring.feedback.min_accuracy);
  w.Key("payload_log");
  w.String(options_.payload_log_dir);
  w.EndObject();
  spdlog::warn("model '{}' version {}: live accuracy {:.4f} is below {:.4f}; retraining is "
               "suggested", model, version, accuracy, config.monitoring.feedback.min_accuracy);
  Fire(model, "accuracy", config, w.Take());
}

void RetrainTrigger::WriteMetrics(PrometheusText& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  out.Family("slipway_retrain_triggers_total", "counter",
             "Times retraining was called for, by model and reason (drift, accuracy)");
  for (const auto& [key, n] : fired_) {
    out.Sample("slipway_retrain_triggers_total", {{"model", key.first}, {"reason", key.second}},
               static_cast<double>(n));
  }
  out.Family("slipway_webhook_deliveries_total", "counter",
             "Retraining webhook deliveries by outcome (sent, failed, suppressed, dropped)");
  std::map<std::string, WebhookNotifier::Counters> by_url;
  for (const auto& [slot, notifier] : notifiers_) {
    const auto c = notifier->counters();
    // Labelled by host only: webhook paths often carry a secret, and /metrics is public.
    const std::string url = slot.substr(0, slot.find(" every "));
    const size_t host_start = url.find("://") == std::string::npos ? 0 : url.find("://") + 3;
    auto& sum = by_url[url.substr(0, url.find('/', host_start))];
    sum.sent += c.sent;
    sum.failed += c.failed;
    sum.suppressed += c.suppressed;
    sum.dropped += c.dropped;
  }
  for (const auto& [url, c] : by_url) {
    for (const auto& [outcome, n] : {std::pair<const char*, uint64_t>{"sent", c.sent},
                                     {"failed", c.failed},
                                     {"suppressed", c.suppressed},
                                     {"dropped", c.dropped}}) {
      out.Sample("slipway_webhook_deliveries_total", {{"target", url}, {"outcome", outcome}},
                 static_cast<double>(n));
    }
  }
}

}  // namespace slipway::monitoring
