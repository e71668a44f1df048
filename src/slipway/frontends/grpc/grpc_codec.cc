#include "slipway/frontends/grpc/grpc_codec.h"

#include <cctype>

#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace slipway::frontends::grpc {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the codec copies protobuf numbers as host bytes; the wire wants little-endian");

using core::DataType;
using core::Status;
using InputTensor = inference::ModelInferRequest::InferInputTensor;

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// The typed-contents fields of InferTensorContents with their element counts, in field order.
struct ContentsField {
  std::string_view name;
  int size;
};

std::array<ContentsField, 8> ContentsFields(const inference::InferTensorContents& c) {
  return {{
      {"bool_contents", c.bool_contents_size()},
      {"int_contents", c.int_contents_size()},
      {"int64_contents", c.int64_contents_size()},
      {"uint_contents", c.uint_contents_size()},
      {"uint64_contents", c.uint64_contents_size()},
      {"fp32_contents", c.fp32_contents_size()},
      {"fp64_contents", c.fp64_contents_size()},
      {"bytes_contents", c.bytes_contents_size()},
  }};
}

bool HasTypedContents(const InputTensor& t) {
  if (!t.has_contents()) return false;
  for (const auto& f : ContentsFields(t.contents())) {
    if (f.size > 0) return true;
  }
  return false;
}

// The one typed field that carries `type`; empty for FP16/BF16 (raw only) and invalid types.
std::string_view ExpectedContentsField(DataType type) {
  switch (type) {
    case DataType::kBool: return "bool_contents";
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32: return "int_contents";
    case DataType::kInt64: return "int64_contents";
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32: return "uint_contents";
    case DataType::kUint64: return "uint64_contents";
    case DataType::kFp32: return "fp32_contents";
    case DataType::kFp64: return "fp64_contents";
    case DataType::kBytes: return "bytes_contents";
    case DataType::kFp16:
    case DataType::kBf16:
    case DataType::kInvalid: return {};
  }
  return {};
}

// Copies a repeated numeric field whose element type is already the wire type.
template <typename T>
std::string CopyValues(const google::protobuf::RepeatedField<T>& values) {
  std::string bytes(static_cast<size_t>(values.size()) * sizeof(T), '\0');
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// Narrows each value to `Narrow`, refusing any that does not fit.
template <typename Narrow, typename Wide>
core::Result<std::string> NarrowValues(const google::protobuf::RepeatedField<Wide>& values,
                                       std::string_view input, DataType type) {
  std::string bytes(static_cast<size_t>(values.size()) * sizeof(Narrow), '\0');
  char* p = bytes.data();
  for (int i = 0; i < values.size(); ++i) {
    const Wide v = values.Get(i);
    if (!std::in_range<Narrow>(v)) {
      return Status::InvalidArgument(
          "input " + Quoted(input) + ": value " + std::to_string(v) + " at index " +
          std::to_string(i) + " is out of range for datatype " +
          std::string(core::DataTypeName(type)) + " [" +
          std::to_string(std::numeric_limits<Narrow>::min()) + ", " +
          std::to_string(std::numeric_limits<Narrow>::max()) + "]");
    }
    const auto n = static_cast<Narrow>(v);
    std::memcpy(p, &n, sizeof(Narrow));
    p += sizeof(Narrow);
  }
  return bytes;
}

// Converts an input's typed contents (known to be non-empty) into wire bytes for `type`.
core::Result<std::string> ConvertContents(const InputTensor& t, DataType type) {
  const std::string type_name(core::DataTypeName(type));
  const std::string_view expected = ExpectedContentsField(type);
  if (expected.empty()) {
    return Status::InvalidArgument("input " + Quoted(t.name()) + ": datatype " + type_name +
                                   " has no typed contents field; send FP16/BF16 in "
                                   "raw_input_contents");
  }
  for (const auto& f : ContentsFields(t.contents())) {
    if (f.size > 0 && f.name != expected) {
      return Status::InvalidArgument("input " + Quoted(t.name()) + " has datatype " + type_name +
                                     " but sets contents." + std::string(f.name) + "; " +
                                     type_name + " is sent in contents." + std::string(expected));
    }
  }
  const inference::InferTensorContents& c = t.contents();
  switch (type) {
    case DataType::kBool: {
      std::string bytes(static_cast<size_t>(c.bool_contents_size()), '\0');
      for (int i = 0; i < c.bool_contents_size(); ++i) bytes[i] = c.bool_contents(i) ? 1 : 0;
      return bytes;
    }
    case DataType::kInt8: return NarrowValues<int8_t>(c.int_contents(), t.name(), type);
    case DataType::kInt16: return NarrowValues<int16_t>(c.int_contents(), t.name(), type);
    case DataType::kInt32: return CopyValues(c.int_contents());
    case DataType::kInt64: return CopyValues(c.int64_contents());
    case DataType::kUint8: return NarrowValues<uint8_t>(c.uint_contents(), t.name(), type);
    case DataType::kUint16: return NarrowValues<uint16_t>(c.uint_contents(), t.name(), type);
    case DataType::kUint32: return CopyValues(c.uint_contents());
    case DataType::kUint64: return CopyValues(c.uint64_contents());
    case DataType::kFp32: return CopyValues(c.fp32_contents());
    case DataType::kFp64: return CopyValues(c.fp64_contents());
    case DataType::kBytes: {
      size_t total = 0;
      for (const std::string& e : c.bytes_contents()) total += 4 + e.size();
      std::string bytes;
      bytes.reserve(total);
      for (const std::string& e : c.bytes_contents()) core::AppendBytesElement(bytes, e);
      return bytes;
    }
    case DataType::kFp16:
    case DataType::kBf16:
    case DataType::kInvalid: break;
  }
  return Status::Internal("input " + Quoted(t.name()) + ": no conversion for datatype " +
                          type_name);
}

core::Result<core::ParameterValue> ToParameterValue(const inference::InferParameter& p,
                                                    std::string_view where,
                                                    std::string_view key) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam: return core::ParameterValue(p.bool_param());
    case inference::InferParameter::kInt64Param:
      return core::ParameterValue(static_cast<int64_t>(p.int64_param()));
    case inference::InferParameter::kStringParam: return core::ParameterValue(p.string_param());
    case inference::InferParameter::kDoubleParam: return core::ParameterValue(p.double_param());
    case inference::InferParameter::kUint64Param:
      return core::ParameterValue(static_cast<uint64_t>(p.uint64_param()));
    case inference::InferParameter::PARAMETER_CHOICE_NOT_SET: break;
  }
  return Status::InvalidArgument(std::string(where) + " parameter " + Quoted(key) +
                                 " has no value (set one of bool_param, int64_param, "
                                 "string_param, double_param, uint64_param)");
}

// Parameters on a tensor (input or requested output) that ask for something we do not offer.
Status CheckTensorParameters(
    const google::protobuf::Map<std::string, inference::InferParameter>& params,
    std::string_view kind, std::string_view name) {
  if (params.contains("shared_memory_region")) {
    return Status::Unimplemented(std::string(kind) + " " + Quoted(name) +
                                 ": shared memory is not supported; send the data in the message");
  }
  return Status::Ok();
}

Status DecodeInput(const InputTensor& t, const std::string* raw, core::InferRequest* out) {
  const DataType type = core::ParseDataType(t.datatype());
  if (type == DataType::kInvalid) {
    return Status::InvalidArgument("input " + Quoted(t.name()) + " has unknown datatype " +
                                   Quoted(t.datatype()));
  }
  core::Shape shape(t.shape().begin(), t.shape().end());
  for (int64_t d : shape) {
    if (d < 0) {
      return Status::InvalidArgument("input " + Quoted(t.name()) + " has shape " +
                                     core::ShapeToString(shape) + " with negative dimension " +
                                     std::to_string(d));
    }
  }
  RETURN_IF_ERROR(CheckTensorParameters(t.parameters(), "input", t.name()));
  if (raw != nullptr) {
    out->inputs.push_back(core::Tensor::Borrowed(t.name(), type, std::move(shape), *raw));
    return Status::Ok();
  }
  if (!HasTypedContents(t)) {
    auto count = core::ElementCount(shape);
    if (!count.ok()) {
      return Status::InvalidArgument("input " + Quoted(t.name()) + ": " + count.status().message());
    }
    if (count.value() != 0) {
      std::string hint = ExpectedContentsField(type).empty()
                             ? "send FP16/BF16 in raw_input_contents"
                             : "set contents." + std::string(ExpectedContentsField(type)) +
                                   " or raw_input_contents";
      return Status::InvalidArgument("input " + Quoted(t.name()) + " with shape " +
                                     core::ShapeToString(shape) + " has no data; " + hint);
    }
    out->inputs.push_back(core::Tensor::Owned(t.name(), type, std::move(shape), std::string()));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::string bytes, ConvertContents(t, type));
  out->inputs.push_back(core::Tensor::Owned(t.name(), type, std::move(shape), std::move(bytes)));
  return Status::Ok();
}

}  // namespace

core::Status DecodeModelInferRequest(const inference::ModelInferRequest& in,
                                     core::InferRequest* out, const LabelResolver& resolve_label) {
  out->model_name = in.model_name();
  auto version = core::ParseModelVersion(in.model_version());
  if (!version.ok() && resolve_label && !std::isdigit(static_cast<unsigned char>(in.model_version()[0]))) {
    version = resolve_label(in.model_name(), in.model_version());
  }
  ASSIGN_OR_RETURN(out->model_version, std::move(version));
  out->id = in.id();

  out->parameters.clear();
  for (const auto& [key, param] : in.parameters()) {
    ASSIGN_OR_RETURN(core::ParameterValue value, ToParameterValue(param, "request", key));
    out->parameters.emplace(key, std::move(value));
  }

  const bool use_raw = in.raw_input_contents_size() > 0;
  if (use_raw && in.raw_input_contents_size() != in.inputs_size()) {
    return Status::InvalidArgument(
        "raw_input_contents must hold one entry per input: got " +
        std::to_string(in.raw_input_contents_size()) + " raw entries for " +
        std::to_string(in.inputs_size()) + " inputs");
  }
  out->inputs.clear();
  out->inputs.reserve(static_cast<size_t>(in.inputs_size()));
  for (int i = 0; i < in.inputs_size(); ++i) {
    const InputTensor& t = in.inputs(i);
    if (use_raw && HasTypedContents(t)) {
      return Status::InvalidArgument("input " + Quoted(t.name()) +
                                     " sets contents while the request uses raw_input_contents; "
                                     "send every input one way or the other");
    }
    RETURN_IF_ERROR(DecodeInput(t, use_raw ? &in.raw_input_contents(i) : nullptr, out));
  }

  out->outputs.clear();
  out->outputs.reserve(static_cast<size_t>(in.outputs_size()));
  for (const auto& o : in.outputs()) {
    if (o.parameters().contains("classification")) {
      return Status::Unimplemented("output " + Quoted(o.name()) +
                                   ": the classification extension is not supported");
    }
    RETURN_IF_ERROR(CheckTensorParameters(o.parameters(), "output", o.name()));
    core::RequestedOutput requested;
    requested.name = o.name();
    out->outputs.push_back(std::move(requested));
  }
  return Status::Ok();
}

void EncodeModelInferResponse(const core::InferResponse& in, inference::ModelInferResponse* out) {
  out->set_model_name(in.model_name);
  out->set_model_version(std::to_string(in.model_version));
  out->set_id(in.id);
  for (const auto& [name, value] : in.parameters) {
    inference::InferParameter& p = (*out->mutable_parameters())[name];
    std::visit(
        [&p](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            p.set_bool_param(v);
          } else if constexpr (std::is_same_v<V, int64_t>) {
            p.set_int64_param(v);
          } else if constexpr (std::is_same_v<V, uint64_t>) {
            p.set_uint64_param(v);
          } else if constexpr (std::is_same_v<V, double>) {
            p.set_double_param(v);
          } else {
            p.set_string_param(v);
          }
        },
        value);
  }
  out->mutable_outputs()->Reserve(static_cast<int>(in.outputs.size()));
  out->mutable_raw_output_contents()->Reserve(static_cast<int>(in.outputs.size()));
  for (const core::Tensor& t : in.outputs) {
    auto* o = out->add_outputs();
    o->set_name(t.name());
    o->set_datatype(std::string(core::DataTypeName(t.type())));
    o->mutable_shape()->Add(t.shape().begin(), t.shape().end());
    const std::string_view bytes = t.bytes();
    out->add_raw_output_contents()->assign(bytes.data(), bytes.size());
  }
}

void EncodeModelConfig(const core::ModelConfig& in, inference::ModelConfig* out) {
  auto to_proto_type = [](DataType type) {
    inference::DataType proto_type = inference::TYPE_INVALID;
    if (!inference::DataType_Parse(std::string(core::DataTypeConfigName(type)), &proto_type)) {
      proto_type = inference::TYPE_INVALID;
    }
    return proto_type;
  };

  out->set_name(in.name);
  out->set_platform(in.platform);
  out->set_backend(in.backend);
  out->set_max_batch_size(static_cast<int32_t>(in.batch_size_limit()));
  for (const core::TensorConfig& t : in.inputs) {
    auto* i = out->add_input();
    i->set_name(t.name);
    i->set_data_type(to_proto_type(t.type));
    i->mutable_dims()->Add(t.dims.begin(), t.dims.end());
  }
  for (const core::TensorConfig& t : in.outputs) {
    auto* o = out->add_output();
    o->set_name(t.name);
    o->set_data_type(to_proto_type(t.type));
    o->mutable_dims()->Add(t.dims.begin(), t.dims.end());
  }

  auto* policy = out->mutable_version_policy();
  switch (in.version_policy.kind) {
    case core::VersionPolicy::Kind::kLatest:
      policy->mutable_latest()->set_num_versions(
          static_cast<uint32_t>(in.version_policy.latest_count));
      break;
    case core::VersionPolicy::Kind::kAll: policy->mutable_all(); break;
    case core::VersionPolicy::Kind::kSpecific:
      policy->mutable_specific()->mutable_versions()->Add(in.version_policy.specific.begin(),
                                                          in.version_policy.specific.end());
      break;
  }

  auto* group = out->add_instance_group();
  group->set_name(in.name);
  group->set_kind(inference::ModelInstanceGroup::KIND_CPU);
  group->set_count(static_cast<int32_t>(in.instance_count));
  if (in.response_cache.enabled) out->mutable_response_cache()->set_enable(true);

  if (in.dynamic_batching.enabled) {
    auto* db = out->mutable_dynamic_batching();
    for (int64_t size : in.dynamic_batching.preferred_batch_sizes) {
      db->add_preferred_batch_size(static_cast<int32_t>(size));
    }
    const auto& d = in.dynamic_batching;
    db->set_max_queue_delay_microseconds(static_cast<uint64_t>(d.max_queue_delay_us));
    db->set_preserve_ordering(d.preserve_ordering);
    db->set_priority_levels(static_cast<uint64_t>(d.priority_levels));
    db->set_default_priority_level(static_cast<uint64_t>(d.default_priority_level));
    db->mutable_default_queue_policy()->set_max_queue_size(
        static_cast<uint32_t>(d.max_queue_size));
    db->mutable_default_queue_policy()->set_default_timeout_microseconds(
        static_cast<uint64_t>(d.default_timeout_us));
  }
  out->set_default_model_filename(in.default_model_filename);
  (*out->mutable_parameters())["intra_op_thread_count"].set_string_value(
      std::to_string(in.intra_op_threads));
  if (in.max_instance_count > in.instance_count) {
    (*out->mutable_parameters())["max_instance_count"].set_string_value(
        std::to_string(in.max_instance_count));
  }
}

namespace {
void SetDuration(const scheduler::Duration& in, inference::StatisticDuration* out) {
  out->set_count(in.count);
  out->set_ns(in.ns);
}
}  // namespace

void EncodeModelStatistics(const serving::ModelStatistics& in, inference::ModelStatistics* out) {
  const auto& s = in.stats;
  out->set_name(in.name);
  out->set_version(in.version);
  out->set_last_inference(s.last_inference_ms);
  out->set_inference_count(s.inference_count);
  out->set_execution_count(s.execution_count);
  auto* is = out->mutable_inference_stats();
  SetDuration(s.success, is->mutable_success());
  SetDuration(s.fail, is->mutable_fail());
  SetDuration(s.queue, is->mutable_queue());
  SetDuration(s.compute_input, is->mutable_compute_input());
  SetDuration(s.compute_infer, is->mutable_compute_infer());
  SetDuration(s.compute_output, is->mutable_compute_output());
  SetDuration(s.cache_hit, is->mutable_cache_hit());
  SetDuration(s.cache_miss, is->mutable_cache_miss());
  for (const auto& [size, b] : s.batches) {
    auto* bs = out->add_batch_stats();
    bs->set_batch_size(size);
    SetDuration(b.compute_input, bs->mutable_compute_input());
    SetDuration(b.compute_infer, bs->mutable_compute_infer());
    SetDuration(b.compute_output, bs->mutable_compute_output());
  }
}

::grpc::Status ToGrpcStatus(const core::Status& status) {
  ::grpc::StatusCode code = ::grpc::StatusCode::UNKNOWN;
  switch (status.code()) {
    case core::StatusCode::kOk: return ::grpc::Status::OK;
    case core::StatusCode::kInvalidArgument: code = ::grpc::StatusCode::INVALID_ARGUMENT; break;
    case core::StatusCode::kNotFound: code = ::grpc::StatusCode::NOT_FOUND; break;
    case core::StatusCode::kUnavailable: code = ::grpc::StatusCode::UNAVAILABLE; break;
    case core::StatusCode::kInternal: code = ::grpc::StatusCode::INTERNAL; break;
    case core::StatusCode::kUnimplemented: code = ::grpc::StatusCode::UNIMPLEMENTED; break;
    case core::StatusCode::kAlreadyExists: code = ::grpc::StatusCode::ALREADY_EXISTS; break;
    case core::StatusCode::kCancelled: code = ::grpc::StatusCode::CANCELLED; break;
    case core::StatusCode::kResourceExhausted:
      code = ::grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case core::StatusCode::kDeadlineExceeded: code = ::grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case core::StatusCode::kFailedPrecondition:
      code = ::grpc::StatusCode::FAILED_PRECONDITION;
      break;
  }
  return ::grpc::Status(code, status.message());
}

}  // namespace slipway::frontends::grpc
