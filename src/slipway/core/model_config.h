// ModelConfig: what the server knows about a model, as plain structs.
//
// A config is built in fixed passes: parse (repository/, from config.yaml or config.pbtxt) ->
// auto-complete (from the model file, by the backend) -> normalise -> validate. Fields that a
// config file may leave out are std::optional until auto-complete fills them.
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slipway/core/data_type.h"
#include "slipway/core/predict_config.h"
#include "slipway/core/status.h"
#include "slipway/core/tensor.h"

namespace slipway::core {

struct TensorConfig {
  std::string name;
  DataType type = DataType::kInvalid;
  // Dimensions without the batch dimension when max_batch_size > 0; -1 means variable.
  Shape dims;
  bool dims_set = false;
};

struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int64_t latest_count = 1;
  std::vector<int64_t> specific;
};

struct DynamicBatchingConfig {
  bool enabled = false;
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_delay_us = 0;
  int64_t max_queue_size = 0;          // pending requests; 0: the server's default
  int64_t default_timeout_us = 0;      // 0: requests wait as long as it takes
  int64_t priority_levels = 0;         // 0 or 1: a single level
  int64_t default_priority_level = 0;  // 0: the lowest level
  bool preserve_ordering = false;      // answer in arrival order
};

// Warm-up before a version takes traffic: `requests` runs of generated inputs (zeros, variable
// dims as 1) of `batch_size` rows each. A failing warm-up fails the version's load.
struct WarmupConfig {
  bool enabled = true;
  int64_t requests = 1;
  int64_t batch_size = 1;
};

// A validation set a new version must pass before it is written (uploads) or serves (loads):
// JSON lines in the model's folder, each {"inputs": {"<name>": [values...]}, "expected": v}.
struct ValidationConfig {
  std::string file;             // relative to the model's folder; "" means no validation
  std::string output;           // the output judged; "" means the first output
  double min_accuracy = 0;      // share of rows whose output matches "expected"; 0: not judged
  double max_divergence = 1;    // share of rows whose top-1 differs from the serving version's
};

// Ground truth fed back for this model's answers (POST /v2/models/<m>/feedback).
struct FeedbackConfig {
  bool enabled = false;
  std::string output;       // the output whose answers are judged; "" means the first output
  int64_t window = 1000;    // live accuracy / error over the most recent rows judged
  double min_accuracy = 0;  // below this (once the window is full) retraining is called for
};

// Drift detection: live inputs (and outputs) compared with a reference, window by window.
struct DriftConfig {
  bool enabled = false;
  std::string reference_file;      // JSON lines {"inputs": {...}} or CSV, in the model's folder
  int64_t reference_rows = 0;      // or: the first N rows served become the reference
  int64_t window_rows = 500;       // a window is judged after this many rows...
  double window_seconds = 0;       // ...or after this many seconds, when > 0
  double p_value = 0.01;           // false-alarm rate per window for the whole model
  double psi = 0.25;               // a feature whose PSI exceeds this drifts too
  std::vector<std::string> categorical;  // features judged as categories (chi-squared)
  int64_t max_features_per_tensor = 64;
  bool outputs = true;             // prediction drift as well
  double sample = 1.0;             // share of requests observed (a uniform sample of the traffic)
  // Of those, at most this many rows a second on average (bursts of a second's worth); 0: all.
  double max_rows_per_second = 5000;
};

// Where a call for retraining goes besides the log and the metrics.
struct RetrainConfig {
  std::string webhook;             // "" uses the server's --retrain-webhook
  double min_interval_seconds = 300;
};

struct MonitoringConfig {
  FeedbackConfig feedback;
  DriftConfig drift;
  RetrainConfig retrain;
};

// A step of a rollout plan: the candidate gets `weight_percent` of the traffic until it has
// served `min_requests` in this step and `min_seconds` have passed, and the guards hold.
struct RolloutStep {
  int64_t weight_percent = 0;
  int64_t min_requests = 0;
  double min_seconds = 0;
};

// Bounds the candidate must stay within, judged once it has served `min_requests` in a step.
struct RolloutGuards {
  double max_error_rate = 0.01;       // server-side failures / requests
  double max_p99_ratio = 1.5;         // candidate p99 <= ratio * stable p99 + p99_slack_ms
  double p99_slack_ms = 5.0;          // absolute slack, so sub-millisecond noise never fails
  double min_agreement = 0.95;        // share of compared answers that agree with stable
  int64_t min_comparisons = 20;       // agreement is judged once this many were compared
  double min_accuracy = 0;            // judged when ground truth is fed back; 0: off
  int64_t min_requests = 20;
};

struct RolloutConfig {
  bool enabled = false;     // a `rollout:` section is present
  bool auto_start = true;   // a new version starts a rollout on its own once ready
  std::vector<RolloutStep> steps;
  RolloutGuards guards;
  double compare_fraction = 0.2;  // share of the candidate's requests also sent to stable
};

// Labels and traffic as the config file states them; targets are version numbers or labels.
struct TrafficConfig {
  std::vector<std::pair<std::string, int64_t>> split;  // target -> weight
  std::string shadow_target;
  double shadow_fraction = 0;
};

struct RoutingConfig {
  std::vector<std::pair<std::string, int64_t>> labels;  // label -> version
  TrafficConfig traffic;
  RolloutConfig rollout;
  bool empty() const {
    return labels.empty() && traffic.split.empty() && traffic.shadow_target.empty() &&
           !rollout.enabled;
  }
};

// Answers kept by the response cache (cache::ResponseCache): identical requests are answered
// without running the model. Only for deterministic models whose answers may be shared between
// callers.
struct ResponseCacheConfig {
  bool enabled = false;
  double ttl_seconds = 0;  // an answer is reused for this long; 0: until evicted or invalidated
};

struct ModelConfig {
  std::string name;
  std::string platform;  // "onnxruntime_onnx"
  std::string backend;   // "onnxruntime"
  std::optional<int64_t> max_batch_size;  // 0: the model does not batch on dimension 0
  std::vector<TensorConfig> inputs;
  std::vector<TensorConfig> outputs;
  VersionPolicy version_policy;
  int64_t instance_count = 0;  // 0: chosen by the server's thread budget
  // Above instance_count: instances are added under load up to this many, and removed when idle.
  int64_t max_instance_count = 0;
  int64_t intra_op_threads = 0;  // runtime threads per instance; set by the server at load
  DynamicBatchingConfig dynamic_batching;
  std::string default_model_filename;
  WarmupConfig warmup;
  ValidationConfig validation;
  MonitoringConfig monitoring;
  RoutingConfig routing;
  ResponseCacheConfig response_cache;
  PredictConfig predict;  // POST /predict: application JSON in and out (predict_config.h)
  // The model's folder in the repository, for files the config names (set when it is read).
  std::string directory;
  // Where the config came from ("config.yaml", "config.pbtxt", or "" for none), for messages.
  std::string source;

  int64_t batch_size_limit() const { return max_batch_size.value_or(0); }
  const TensorConfig* FindInput(std::string_view name) const;
  const TensorConfig* FindOutput(std::string_view name) const;
};

// Checks a config after auto-complete: names, types and dims present and consistent.
Status ValidateModelConfig(const ModelConfig& config);

// The shape clients see: dims with a leading -1 when the model batches.
Shape ExternalShape(const ModelConfig& config, const TensorConfig& tensor);

}  // namespace slipway::core
