// Parses a Triton config.pbtxt into a ModelConfig, so an existing Triton repository of ONNX models
// serves unchanged. Fields Slipway does not act on are accepted and ignored.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "model_config.pb.h"
#include "slipway/repository/model_repository.h"

namespace slipway::repository {

using core::Result;
using core::Status;

namespace {

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first.empty()) {
      first = "line " + std::to_string(line + 1) + " column " + std::to_string(column + 1) + ": " +
              message;
    }
  }
  std::string first;
};

core::TensorConfig FromProto(const std::string& name, inference::DataType type,
                             const google::protobuf::RepeatedField<int64_t>& dims) {
  core::TensorConfig t;
  t.name = name;
  t.type = core::ParseConfigDataType(inference::DataType_Name(type));
  t.dims.assign(dims.begin(), dims.end());
  t.dims_set = !dims.empty();
  return t;
}

Result<core::ModelConfig> FromModelConfigProto(const inference::ModelConfig& pb,
                                               const std::string& model_name,
                                               const std::string& where) {
  core::ModelConfig c;
  c.name = pb.name().empty() ? model_name : pb.name();
  if (c.name != model_name) {
    return Status::InvalidArgument("model '" + model_name + "' " + where + " names the model '" +
                                   c.name + "' but its folder is '" + model_name + "'");
  }
  if (pb.model_warmup_size() > 0) {
    c.warmup.enabled = true;
    c.warmup.requests = 0;
    for (const auto& w : pb.model_warmup()) c.warmup.requests += std::max<int64_t>(1, w.count());
    c.warmup.batch_size = std::max<int64_t>(1, pb.model_warmup(0).batch_size());
  }
  c.platform = pb.platform();
  c.backend = pb.backend();
  c.max_batch_size = pb.max_batch_size();
  c.default_model_filename = pb.default_model_filename();
  // Triton's `response_cache { enable: true }`; it has no expiry (entries live until evicted).
  c.response_cache.enabled = pb.has_response_cache() && pb.response_cache().enable();
  for (const auto& in : pb.input()) c.inputs.push_back(FromProto(in.name(), in.data_type(), in.dims()));
  for (const auto& out : pb.output()) {
    c.outputs.push_back(FromProto(out.name(), out.data_type(), out.dims()));
  }
  for (auto* list : {&c.inputs, &c.outputs}) {
    for (auto& t : *list) {
      if (t.type == core::DataType::kInvalid) {
        return Status::InvalidArgument("model '" + model_name + "' config.pbtxt: tensor '" +
                                       t.name + "' has no data_type");
      }
    }
  }
  if (pb.has_version_policy()) {
    const auto& vp = pb.version_policy();
    if (vp.has_all()) {
      c.version_policy.kind = core::VersionPolicy::Kind::kAll;
    } else if (vp.has_specific()) {
      c.version_policy.kind = core::VersionPolicy::Kind::kSpecific;
      c.version_policy.specific.assign(vp.specific().versions().begin(),
                                       vp.specific().versions().end());
    } else if (vp.has_latest()) {
      c.version_policy.latest_count = vp.latest().num_versions();
    }
  }
  int64_t count = 0;
  for (const auto& group : pb.instance_group()) {
    if (group.kind() == inference::ModelInstanceGroup::KIND_GPU) {
      return Status::Unimplemented("model '" + model_name +
                                   "' config.pbtxt asks for KIND_GPU instances; this server runs "
                                   "on CPU only");
    }
    count += group.count() > 0 ? group.count() : 1;
  }
  c.instance_count = count;
  if (pb.has_dynamic_batching()) {
    c.dynamic_batching.enabled = true;
    c.dynamic_batching.max_queue_delay_us =
        static_cast<int64_t>(pb.dynamic_batching().max_queue_delay_microseconds());
    for (int32_t s : pb.dynamic_batching().preferred_batch_size()) {
      c.dynamic_batching.preferred_batch_sizes.push_back(s);
    }
    const auto& db = pb.dynamic_batching();
    c.dynamic_batching.preserve_ordering = db.preserve_ordering();
    c.dynamic_batching.priority_levels = static_cast<int64_t>(db.priority_levels());
    c.dynamic_batching.default_priority_level = static_cast<int64_t>(db.default_priority_level());
    c.dynamic_batching.max_queue_size =
        static_cast<int64_t>(db.default_queue_policy().max_queue_size());
    c.dynamic_batching.default_timeout_us =
        static_cast<int64_t>(db.default_queue_policy().default_timeout_microseconds());
  }
  return c;
}

}  // namespace

Result<core::ModelConfig> ParseConfigPbtxt(const std::string& text, const std::string& model_name) {
  inference::ModelConfig pb;
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(text, &pb)) {
    return Status::InvalidArgument("model '" + model_name + "' config.pbtxt: " + errors.first);
  }
  return FromModelConfigProto(pb, model_name, "config.pbtxt");
}

Result<core::ModelConfig> ParseConfigJson(const std::string& text, const std::string& model_name) {
  inference::ModelConfig pb;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto st = google::protobuf::util::JsonStringToMessage(text, &pb, options);
  if (!st.ok()) {
    return Status::InvalidArgument("model '" + model_name + "' config override: " +
                                   std::string(st.message()));
  }
  return FromModelConfigProto(pb, model_name, "config override");
}

}  // namespace slipway::repository
