// Predictor: answers an application's own JSON with a model that has a `predict:` section
// (POST /predict, POST /v2/models/<m>[/versions/<v>]/predict).
//
// One call: the body is a JSON object (answered with one object) or a non-empty list of objects
// (answered with a list, in order). The entry model's config is looked up (GetModelConfig), its
// ModelProcessor (tokenizers, labels) taken from a cache keyed by model name and rebuilt when
// the config's predict section, tensors or folder change, or when a file it names changes on
// disk. Rows are encoded into core::InferRequests of at most the pipeline's batch limit each (the
// smallest max_batch_size of the chain; a model without batching takes one row per request, with
// no batch dimension), which run concurrently (at most `max_requests_in_flight` at a time), each
// through the chain: the entry model, then every `then` model in order, fed the previous outputs
// by its name map. Answers are decoded from the last model's outputs and joined in row order.
//
// Status codes: the application's JSON (not JSON, empty list, non-object rows, missing or mistyped
// fields, empty or oversized text) -> InvalidArgument; an unknown model, or one without a predict
// section -> NotFound; a pipeline model that is not loaded -> Unavailable; a pipeline or output
// that does not fit the models -> Internal; errors of the inference itself pass through. When
// several requests of a list fail, the first failure observed is returned.
//
// Thread safety: every method may be called from any thread. Predict reads `call.body` before it
// returns and calls `done` exactly once, on the caller's thread or on one of the inference
// service's; it never blocks on inference. DefaultModel blocks briefly (config lookups).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slipway/core/infer_request.h"
#include "slipway/core/snapshot.h"
#include "slipway/core/status.h"
#include "slipway/processing/model_processor.h"
#include "slipway/serving/inference_service.h"

namespace slipway::processing {

struct PredictCall {
  std::string model;
  int64_t version = 0;            // 0: the highest ready version (or the router's choice)
  std::string_view body;          // read before Predict returns
  core::Parameters parameters;    // passed on with every request (routing_key, priority, ...)
  std::function<bool()> cancelled;
};

// The answer's JSON text, or the reason there is none.
using PredictCallback = std::function<void(core::Result<std::string>)>;

class Predictor {
 public:
  struct Options {
    size_t max_requests_in_flight = 8;   // per call, when a list is split into several requests
    double default_model_ttl_seconds = 1.0;  // how long DefaultModel reuses its answer
  };
  static std::unique_ptr<Predictor> Create(Options options);
  static std::unique_ptr<Predictor> Create() { return Create(Options()); }

  void Predict(serving::InferenceService& inference, PredictCall call, PredictCallback done);

  // The model POST /predict without ?model= goes to, among `models` (the ready ones): the one
  // whose predict section says `default: true`, else the only one with a predict section.
  // NotFound when none has a predict section; InvalidArgument when several are marked default
  // or none is and several have a section.
  core::Result<std::string> DefaultModel(const serving::InferenceService& inference,
                                         const std::vector<std::string>& models);

  // The processor for `config`, from the cache when its inputs are unchanged.
  core::Result<std::shared_ptr<const ModelProcessor>> ProcessorFor(const core::ModelConfig& config);

  // [begin, end) row ranges of at most `chunk` rows each. Pure.
  static std::vector<std::pair<size_t, size_t>> SplitRows(size_t rows, size_t chunk);

 private:
  struct Cached {
    std::shared_ptr<const ModelProcessor> processor;
    std::vector<std::pair<int64_t, int64_t>> stamps;  // named files: mtime (ns), size
  };
  using Table = std::map<std::string, Cached>;
  struct DefaultAnswer {
    std::vector<std::string> models;
    std::chrono::steady_clock::time_point at;
    core::Result<std::string> result = core::Status::NotFound("");
  };

  explicit Predictor(Options options) : options_(options) {}

  Options options_;
  core::Snapshot<Table> processors_;
  std::mutex write_mu_;  // serialises writers of processors_
  std::mutex default_mu_;
  std::optional<DefaultAnswer> default_;
};

}  // namespace slipway::processing
