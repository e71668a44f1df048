#include "slipway/processing/predictor.h"

#include <algorithm>
#include <filesystem>

namespace slipway::processing {

using core::Result;
using core::Status;
namespace dom = simdjson::dom;

namespace {

// One model of the chain as one request of it needs it.
struct Step {
  std::string model;
  int64_t version = 0;
  bool batching = false;
  std::vector<std::pair<std::string, std::string>> feeds;  // this input <- previous output
  std::vector<std::string> outputs;                        // requested; empty: all
};

// One Predict call in flight: its chunks of rows, their answers, and the fan-out's state.
struct Run {
  serving::InferenceService* inference = nullptr;
  std::shared_ptr<const ModelProcessor> processor;
  std::vector<Step> steps;
  core::Parameters parameters;
  std::function<bool()> cancelled;
  bool list = false;
  size_t window = 1;
  PredictCallback done;
  std::vector<std::vector<core::Tensor>> inputs;  // per chunk
  std::vector<size_t> rows;                       // per chunk
  std::vector<std::vector<std::string>> answers;  // per chunk

  std::mutex mu;
  size_t next = 0;
  size_t in_flight = 0;
  bool failed = false;
  bool completed = false;
  bool pumping = false;
  bool again = false;
  Status error;
};

void RunStep(const std::shared_ptr<Run>& run, size_t chunk, size_t step,
             std::vector<core::Tensor> inputs);

void Finish(const std::shared_ptr<Run>& run) {
  if (run->failed) return run->done(run->error);
  std::string out;
  if (run->list) out.push_back('[');
  bool first = true;
  for (const auto& chunk : run->answers) {
    for (const auto& answer : chunk) {
      if (!first) out.push_back(',');
      first = false;
      out += answer;
    }
  }
  if (run->list) out.push_back(']');
  run->done(std::move(out));
}

// Launches chunks while the window has room. Re-entrant calls (an answer arriving on the
// launching thread) only ask the running loop to look again, so the stack stays flat.
void Pump(const std::shared_ptr<Run>& run) {
  {
    std::lock_guard<std::mutex> lock(run->mu);
    if (run->pumping) {
      run->again = true;
      return;
    }
    run->pumping = true;
  }
  for (;;) {
    size_t chunk = 0;
    {
      std::lock_guard<std::mutex> lock(run->mu);
      if (!run->failed && run->next < run->inputs.size() && run->in_flight < run->window) {
        chunk = run->next++;
        ++run->in_flight;
      } else if (run->again) {
        run->again = false;
        continue;
      } else {
        run->pumping = false;
        return;
      }
    }
    RunStep(run, chunk, 0, std::move(run->inputs[chunk]));
  }
}

void ChunkDone(const std::shared_ptr<Run>& run, Status st) {
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(run->mu);
    --run->in_flight;
    if (!st.ok() && !run->failed) {
      run->failed = true;
      run->error = std::move(st);
    }
    if (run->in_flight == 0 && (run->failed || run->next == run->inputs.size()) &&
        !run->completed) {
      run->completed = true;
      finish = true;
    }
  }
  if (finish) return Finish(run);
  Pump(run);
}

const core::Tensor* FindTensor(const std::vector<core::Tensor>& list, const std::string& name) {
  for (const auto& t : list) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

void RunStep(const std::shared_ptr<Run>& run, size_t chunk, size_t step,
             std::vector<core::Tensor> inputs) {
  const Step& s = run->steps[step];
  core::InferRequest request;
  request.model_name = s.model;
  request.model_version = s.version;
  request.parameters = run->parameters;
  request.cancelled = run->cancelled;
  request.inputs = std::move(inputs);
  for (const auto& name : s.outputs) request.outputs.push_back({name});
  run->inference->Infer(std::move(request), [run, chunk, step](Result<core::InferResponse> r) {
    const Step& here = run->steps[step];
    if (!r.ok()) {
      Status st = r.status();
      if (step > 0) {
        st = Status(st.code(), "pipeline model '" + here.model + "': " + st.message());
      }
      return ChunkDone(run, std::move(st));
    }
    const size_t rows = run->rows[chunk];
    if (step + 1 == run->steps.size()) {
      return ChunkDone(run, run->processor->Decode(r->outputs, static_cast<int64_t>(rows),
                                                   here.batching, &run->answers[chunk]));
    }
    const Step& next = run->steps[step + 1];
    std::vector<core::Tensor> fed;
    for (const auto& [input, output] : next.feeds) {
      const core::Tensor* t = FindTensor(r->outputs, output);
      if (t == nullptr) {
        return ChunkDone(run, Status::Internal("model '" + here.model +
                                               "' answered without output '" + output +
                                               "', which pipeline model '" + next.model +
                                               "' needs"));
      }
      core::Shape shape;
      if (next.batching) shape.push_back(static_cast<int64_t>(rows));
      const size_t skip = here.batching ? 1 : 0;
      if (t->shape().size() < skip) {
        return ChunkDone(run, Status::Internal("output '" + output + "' has no batch dimension"));
      }
      shape.insert(shape.end(), t->shape().begin() + static_cast<std::ptrdiff_t>(skip),
                   t->shape().end());
      fed.push_back(core::Tensor::Owned(input, t->type(), std::move(shape), std::string(t->bytes())));
    }
    RunStep(run, chunk, step + 1, std::move(fed));
  });
}

// The chain after the entry model: each step's config, checked against the one before it.
Status PlanSteps(serving::InferenceService& inference, const core::ModelConfig& entry,
                 const ModelProcessor& processor, std::vector<Step>* steps, size_t* chunk) {
  const core::ModelConfig* previous = &entry;
  std::vector<core::ModelConfig> configs;
  configs.reserve(entry.predict.then.size());
  for (const core::PredictStepConfig& spec : entry.predict.then) {
    auto config = inference.GetModelConfig(spec.model, 0);
    if (!config.ok()) {
      return Status::Unavailable("model '" + entry.name + "' predict: pipeline model '" +
                                 spec.model + "' is not available: " + config.status().message());
    }
    configs.push_back(std::move(config).value());
    const core::ModelConfig& c = configs.back();
    const std::string where = "model '" + entry.name + "' predict: pipeline model '" + c.name + "'";
    for (const auto& [input, output] : spec.inputs) {
      if (c.FindInput(input) == nullptr) {
        return Status::Internal(where + " has no input '" + input + "'");
      }
      if (previous->FindOutput(output) == nullptr) {
        return Status::Internal(where + ": model '" + previous->name + "' has no output '" +
                                output + "'");
      }
      if (std::find(steps->back().outputs.begin(), steps->back().outputs.end(), output) ==
          steps->back().outputs.end()) {
        steps->back().outputs.push_back(output);
      }
    }
    for (const auto& in : c.inputs) {
      const bool fed = std::any_of(spec.inputs.begin(), spec.inputs.end(),
                                   [&](const auto& m) { return m.first == in.name; });
      if (!fed) return Status::Internal(where + ": its input '" + in.name + "' is not fed");
    }
    Step step;
    step.model = c.name;
    step.batching = c.batch_size_limit() > 0;
    step.feeds = spec.inputs;
    const int64_t limit = std::max<int64_t>(1, c.batch_size_limit());
    *chunk = std::min<size_t>(*chunk, static_cast<size_t>(limit));
    steps->push_back(std::move(step));
    previous = &c;
  }
  steps->back().outputs = processor.RequestedOutputs();
  for (const auto& name : steps->back().outputs) {
    if (previous->FindOutput(name) == nullptr) {
      return Status::Internal("model '" + entry.name + "' predict: model '" + previous->name +
                              "' has no output '" + name + "'");
    }
  }
  return Status::Ok();
}

std::vector<std::pair<int64_t, int64_t>> FileStamps(const core::ModelConfig& config) {
  std::vector<std::pair<int64_t, int64_t>> stamps;
  auto stamp = [&](const std::string& file) {
    std::error_code ec;
    const auto path = std::filesystem::path(config.directory) / file;
    const auto time = std::filesystem::last_write_time(path, ec);
    const int64_t t = ec ? -1 : static_cast<int64_t>(time.time_since_epoch().count());
    const auto size = std::filesystem::file_size(path, ec);
    stamps.emplace_back(t, ec ? -1 : static_cast<int64_t>(size));
  };
  for (const auto& in : config.predict.inputs) {
    if (in.is_text()) stamp(in.tokenizer.vocab);
  }
  for (const auto& out : config.predict.outputs) {
    if (!out.labels.empty()) stamp(out.labels);
  }
  return stamps;
}

bool SameTensors(const std::vector<core::TensorConfig>& a, const std::vector<core::TensorConfig>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].type != b[i].type || a[i].dims != b[i].dims) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<Predictor> Predictor::Create(Options options) {
  if (options.max_requests_in_flight == 0) options.max_requests_in_flight = 1;
  return std::unique_ptr<Predictor>(new Predictor(options));
}

std::vector<std::pair<size_t, size_t>> Predictor::SplitRows(size_t rows, size_t chunk) {
  std::vector<std::pair<size_t, size_t>> out;
  chunk = std::max<size_t>(1, chunk);
  for (size_t begin = 0; begin < rows; begin += chunk) {
    out.emplace_back(begin, std::min(rows, begin + chunk));
  }
  return out;
}

Result<std::shared_ptr<const ModelProcessor>> Predictor::ProcessorFor(
    const core::ModelConfig& config) {
  auto stamps = FileStamps(config);
  auto same = [&](const Cached& c) {
    const core::ModelConfig& old = c.processor->config();
    return c.stamps == stamps && old.directory == config.directory &&
           old.predict == config.predict && old.max_batch_size == config.max_batch_size &&
           SameTensors(old.inputs, config.inputs) && SameTensors(old.outputs, config.outputs);
  };
  {
    auto table = processors_.Load();
    auto it = table->find(config.name);
    if (it != table->end() && same(it->second)) return it->second.processor;
  }
  ASSIGN_OR_RETURN(auto processor, ModelProcessor::Create(config));
  std::lock_guard<std::mutex> lock(write_mu_);
  auto table = std::make_shared<Table>(*processors_.Load());
  (*table)[config.name] = Cached{processor, std::move(stamps)};
  processors_.Store(std::move(table));
  return processor;
}

void Predictor::Predict(serving::InferenceService& inference, PredictCall call,
                        PredictCallback done) {
  auto config = inference.GetModelConfig(call.model, call.version);
  if (!config.ok()) return done(config.status());
  if (!config->predict.enabled) {
    return done(Status::NotFound("model '" + call.model + "' has no predict section in its "
                                 "config; call POST /v2/models/" + call.model + "/infer instead"));
  }
  auto processor = ProcessorFor(*config);
  if (!processor.ok()) return done(processor.status());

  thread_local dom::parser parser;
  dom::element doc;
  if (auto error = parser.parse(call.body.data(), call.body.size()).get(doc); error) {
    return done(Status::InvalidArgument(std::string("the body is not valid JSON: ") +
                                        simdjson::error_message(error)));
  }
  std::vector<dom::element> items;
  bool list = false;
  if (doc.type() == dom::element_type::ARRAY) {
    list = true;
    dom::array array;
    if (doc.get_array().get(array) != simdjson::SUCCESS) {
      return done(Status::InvalidArgument("the body must be a JSON object or a list of objects"));
    }
    for (dom::element e : array) items.push_back(e);
    if (items.empty()) return done(Status::InvalidArgument("the list of rows is empty"));
  } else if (doc.type() == dom::element_type::OBJECT) {
    items.push_back(doc);
  } else {
    return done(Status::InvalidArgument("the body must be a JSON object or a list of objects"));
  }

  auto run = std::make_shared<Run>();
  run->inference = &inference;
  run->processor = *processor;
  run->parameters = std::move(call.parameters);
  run->cancelled = std::move(call.cancelled);
  run->list = list;
  run->window = options_.max_requests_in_flight;
  Step entry;
  entry.model = call.model;
  entry.version = call.version;
  entry.batching = config->batch_size_limit() > 0;
  run->steps.push_back(std::move(entry));
  size_t chunk = static_cast<size_t>(std::max<int64_t>(1, config->batch_size_limit()));
  if (auto st = PlanSteps(inference, *config, **processor, &run->steps, &chunk); !st.ok()) {
    return done(st);
  }
  const auto ranges = SplitRows(items.size(), chunk);
  for (const auto& [begin, end] : ranges) {
    std::vector<core::Tensor> tensors;
    if (auto st = (*processor)->Encode(items, begin, end, list, run->steps[0].batching, &tensors);
        !st.ok()) {
      return done(st);
    }
    run->inputs.push_back(std::move(tensors));
    run->rows.push_back(end - begin);
  }
  run->answers.resize(ranges.size());
  run->done = std::move(done);
  Pump(run);
}

Result<std::string> Predictor::DefaultModel(const serving::InferenceService& inference,
                                            const std::vector<std::string>& models) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(default_mu_);
  if (default_ && default_->models == models &&
      now - default_->at < std::chrono::duration<double>(options_.default_model_ttl_seconds)) {
    return default_->result;
  }
  std::vector<std::string> with_section;
  std::vector<std::string> defaults;
  for (const auto& name : models) {
    auto config = inference.GetModelConfig(name, 0);
    if (!config.ok() || !config->predict.enabled) continue;
    with_section.push_back(name);
    if (config->predict.is_default) defaults.push_back(name);
  }
  auto join = [](const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  Result<std::string> result = Status::NotFound(
      "no ready model has a predict section in its config, so POST /predict has nothing to "
      "answer with");
  if (defaults.size() == 1) {
    result = defaults[0];
  } else if (defaults.size() > 1) {
    result = Status::InvalidArgument("several models are marked predict default (" +
                                     join(defaults) + "); name one with ?model=NAME");
  } else if (with_section.size() == 1) {
    result = with_section[0];
  } else if (with_section.size() > 1) {
    result = Status::InvalidArgument("POST /predict needs ?model=NAME: no model is marked "
                                     "predict default and several have a predict section (" +
                                     join(with_section) + ")");
  }
  default_ = DefaultAnswer{models, now, result};
  return result;
}

}  // namespace slipway::processing
