#include "slipway/app/bench/clients.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>

#include "grpc_service.grpc.pb.h"
#include "slipway/app/bench/server_api.h"
#include "slipway/core/json_writer.h"

namespace slipway::app::bench {
namespace {

using core::Result;
using core::Status;

std::string HeaderJson(const std::vector<InputTensor>& inputs, bool binary) {
  std::string body = "{\"inputs\":[";
  for (size_t i = 0; i < inputs.size(); ++i) {
    const InputTensor& in = inputs[i];
    core::JsonWriter name;
    name.String(in.name);
    body += (i ? ",{\"name\":" : "{\"name\":") + name.Take() + ",\"datatype\":\"" + in.datatype +
            "\",\"shape\":[";
    for (size_t k = 0; k < in.shape.size(); ++k)
      body += (k ? "," : "") + std::to_string(in.shape[k]);
    body += "],";
    if (binary) {
      body += "\"parameters\":{\"binary_data_size\":" + std::to_string(in.raw.size()) + "}}";
    } else {
      body += "\"data\":" + in.json + "}";
    }
  }
  body += binary ? "],\"parameters\":{\"binary_data_output\":true}}" : "]}";
  return body;
}

class HttpInferClient : public InferClient {
 public:
  HttpInferClient(const Options& o, const std::vector<InputTensor>& inputs)
      : client_(o.http.host, o.http.port),
        path_(ServerApi::ModelPath(o.model, o.model_version) + "/infer"),
        binary_(o.protocol == Protocol::kHttpBinary) {
    const auto sec = static_cast<time_t>(o.timeout_seconds);
    const auto usec = static_cast<time_t>((o.timeout_seconds - static_cast<double>(sec)) * 1e6);
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);
    client_.set_connection_timeout(sec, usec);
    client_.set_read_timeout(sec, usec);
    client_.set_write_timeout(sec, usec);
    if (binary_) {
      size_t header_length = 0;
      body_ = BinaryInferBody(inputs, &header_length);
      headers_.emplace("Inference-Header-Content-Length", std::to_string(header_length));
      content_type_ = "application/octet-stream";
    } else {
      body_ = JsonInferBody(inputs);
      content_type_ = "application/json";
    }
  }

  CallOutcome Infer() override {
    CallOutcome out;
    auto res = client_.Post(path_, headers_, body_, content_type_);
    if (!res) {
      out.error_kind = "transport " + httplib::to_string(res.error());
      out.error_message = "HTTP request failed: " + httplib::to_string(res.error());
      return out;
    }
    if (res->status != 200) {
      out.error_kind = "http " + std::to_string(res->status);
      out.error_message = res->body.substr(0, 300);
      return out;
    }
    if (binary_) {
      const std::string h = res->get_header_value("Inference-Header-Content-Length");
      const size_t n = h.empty() ? res->body.size() : std::strtoull(h.c_str(), nullptr, 10);
      if (n > res->body.size() || res->body.compare(0, 1, "{") != 0 ||
          std::string_view(res->body).substr(0, n).find("\"outputs\"") == std::string_view::npos) {
        out.error_kind = "bad response";
        out.error_message = "binary response without a JSON header listing outputs";
        return out;
      }
    } else if (res->body.find("\"outputs\"") == std::string::npos) {
      out.error_kind = "bad response";
      out.error_message = "JSON response without outputs: " + res->body.substr(0, 300);
      return out;
    }
    out.ok = true;
    return out;
  }

 private:
  httplib::Client client_;
  std::string path_;
  bool binary_;
  std::string body_;
  httplib::Headers headers_;
  std::string content_type_;
};

std::shared_ptr<grpc::Channel> MakeChannel(const HostPort& target, int index) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Channels with equal arguments may share one connection; give each worker its own.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("slipway.bench.worker", index);
  return grpc::CreateCustomChannel(target.ToString(), grpc::InsecureChannelCredentials(), args);
}

std::chrono::system_clock::time_point Deadline(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

class GrpcInferClient : public InferClient {
 public:
  GrpcInferClient(const Options& o, const std::vector<InputTensor>& inputs)
      : stub_(inference::GRPCInferenceService::NewStub(MakeChannel(o.grpc, o.index))),
        timeout_seconds_(o.timeout_seconds) {
    request_.set_model_name(o.model);
    request_.set_model_version(o.model_version);
    for (const InputTensor& in : inputs) {
      auto* t = request_.add_inputs();
      t->set_name(in.name);
      t->set_datatype(in.datatype);
      for (int64_t d : in.shape) t->add_shape(d);
      request_.add_raw_input_contents(in.raw);
    }
  }

  CallOutcome Infer() override {
    CallOutcome out;
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(timeout_seconds_));
    response_.Clear();
    const grpc::Status st = stub_->ModelInfer(&ctx, request_, &response_);
    if (!st.ok()) {
      out.error_kind = "grpc " + GrpcCodeName(st.error_code());
      out.error_message = st.error_message().substr(0, 300);
      return out;
    }
    if (response_.outputs_size() == 0) {
      out.error_kind = "bad response";
      out.error_message = "gRPC response without outputs";
      return out;
    }
    out.ok = true;
    return out;
  }

 private:
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  double timeout_seconds_;
  inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
};

}  // namespace

std::string JsonInferBody(const std::vector<InputTensor>& inputs) {
  return HeaderJson(inputs, /*binary=*/false);
}

std::string BinaryInferBody(const std::vector<InputTensor>& inputs, size_t* header_length) {
  std::string body = HeaderJson(inputs, /*binary=*/true);
  *header_length = body.size();
  for (const InputTensor& in : inputs) body += in.raw;
  return body;
}

std::string GrpcCodeName(int code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return "CODE_" + std::to_string(code);
}

Status CheckGrpcReachable(const HostPort& grpc, double timeout_seconds) {
  auto stub = inference::GRPCInferenceService::NewStub(MakeChannel(grpc, -1));
  inference::ServerLiveRequest req;
  inference::ServerLiveResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(timeout_seconds));
  const grpc::Status st = stub->ServerLive(&ctx, req, &resp);
  if (!st.ok()) {
    return Status::Unavailable("cannot reach the gRPC server at " + grpc.ToString() + " (" +
                               GrpcCodeName(st.error_code()) + ": " + st.error_message() + ")");
  }
  return Status::Ok();
}

Result<std::unique_ptr<InferClient>> InferClient::Create(const Options& options,
                                                         const std::vector<InputTensor>& inputs) {
  if (options.protocol == Protocol::kHttpJson) {
    for (const InputTensor& in : inputs) {
      if (in.datatype == "FP16" || in.datatype == "BF16") {
        return Status::InvalidArgument("input '" + in.name + "' is " + in.datatype +
                                       ", which KServe v2 JSON cannot carry; use --protocol "
                                       "http-binary or grpc");
      }
    }
  }
  if (options.protocol == Protocol::kGrpc) {
    return std::unique_ptr<InferClient>(std::make_unique<GrpcInferClient>(options, inputs));
  }
  return std::unique_ptr<InferClient>(std::make_unique<HttpInferClient>(options, inputs));
}

}  // namespace slipway::app::bench
