#include "slipway/frontends/grpc/grpc_server.h"

#include <cctype>

#include <grpc/grpc.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "grpc_service.grpc.pb.h"
#include "grpc_service.pb.h"
#include "health.grpc.pb.h"
#include "slipway/core/data_type.h"
#include "slipway/core/infer_request.h"
#include "slipway/frontends/grpc/grpc_codec.h"

namespace slipway::frontends::grpc {
namespace {

using ::grpc::ServerContext;

void FillTensorMetadata(const serving::TensorMetadata& in,
                        inference::ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(in.name);
  out->set_datatype(std::string(core::DataTypeName(in.type)));
  out->mutable_shape()->Add(in.shape.begin(), in.shape.end());
}

// Decodes, runs and encodes one inference; the request message outlives the call, so the
// decoded tensors may borrow its bytes.
core::Status RunInference(serving::InferenceService& service,
                          const inference::ModelInferRequest& request,
                          inference::ModelInferResponse* response, const LabelResolver& resolve) {
  core::InferRequest decoded;
  RETURN_IF_ERROR(DecodeModelInferRequest(request, &decoded, resolve));
  ASSIGN_OR_RETURN(core::InferResponse result,
                   serving::InferAndWait(service, std::move(decoded)));
  EncodeModelInferResponse(result, response);
  return core::Status::Ok();
}

std::string ListenAddress(const std::string& host, int port) {
  const bool ipv6_literal = host.find(':') != std::string::npos && host.front() != '[';
  return (ipv6_literal ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// TLS credentials from the PEM files of `options`, reread every tls_refresh_seconds by gRPC's
// file watcher; `provider` receives the watcher, which must outlive the server.
core::Result<std::shared_ptr<::grpc::ServerCredentials>> TlsCredentials(
    const GrpcServerOptions& options,
    std::shared_ptr<::grpc::experimental::CertificateProviderInterface>* provider) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    return core::Status::InvalidArgument(
        "a TLS client CA needs a server certificate and private key too");
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return core::Status::InvalidArgument(
        std::string("TLS needs both a certificate and a private key; only the ") +
        (options.tls_cert_file.empty() ? "key" : "certificate") + " was given");
  }
  const std::pair<const std::string*, const char*> files[] = {
      {&options.tls_cert_file, "certificate"},
      {&options.tls_key_file, "private key"},
      {&options.tls_client_ca_file, "client CA"}};
  for (const auto& [path, what] : files) {
    if (path->empty()) continue;
    std::ifstream in(*path, std::ios::binary);
    if (!in) {
      return core::Status::InvalidArgument(std::string("cannot read the TLS ") + what + " '" +
                                           *path + "': " + std::strerror(errno));
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find("-----BEGIN ") == std::string::npos) {
      return core::Status::InvalidArgument(std::string("the TLS ") + what + " '" + *path +
                                           "' holds no PEM data");
    }
  }
  *provider = std::make_shared<::grpc::experimental::FileWatcherCertificateProvider>(
      options.tls_key_file, options.tls_cert_file, options.tls_client_ca_file,
      std::max(1u, options.tls_refresh_seconds));
  ::grpc::experimental::TlsServerCredentialsOptions tls(*provider);
  tls.watch_identity_key_cert_pairs();
  if (options.tls_client_ca_file.empty()) {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return ::grpc::experimental::TlsServerCredentials(tls);
}

// Keys, roles and rate limits: OK to go on, or the refusal (UNAUTHENTICATED, PERMISSION_DENIED,
// RESOURCE_EXHAUSTED) to answer with.
::grpc::Status Admit(security::AccessGuard* guard, const ::grpc::ServerContextBase& context,
                     security::Access access) {
  if (guard == nullptr) return ::grpc::Status::OK;
  const auto& md = context.client_metadata();
  auto value = [&md](const char* name) -> std::string_view {
    auto it = md.find(name);
    return it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  };
  // "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000": the address without the port.
  std::string peer = context.peer();
  if (auto colon = peer.find(':'); colon != std::string::npos) peer = peer.substr(colon + 1);
  if (auto port = peer.rfind(':'); port != std::string::npos) peer = peer.substr(0, port);
  const auto v = guard->Check(access, security::AccessGuard::CredentialFrom(
                                          value("authorization"), value("x-api-key")),
                              peer);
  switch (v.outcome) {
    case security::Verdict::kAllowed: return ::grpc::Status::OK;
    case security::Verdict::kUnauthenticated:
      return ::grpc::Status(::grpc::StatusCode::UNAUTHENTICATED, v.message);
    case security::Verdict::kForbidden:
      return ::grpc::Status(::grpc::StatusCode::PERMISSION_DENIED, v.message);
    case security::Verdict::kRateLimited:
      return ::grpc::Status(::grpc::StatusCode::RESOURCE_EXHAUSTED, v.message);
  }
  return ::grpc::Status::OK;
}

#define SLIPWAY_ADMIT(access)                                                    \
  do {                                                                           \
    ::grpc::Status admitted = Admit(guard_, *context, security::Access::access); \
    if (!admitted.ok()) return admitted;                                         \
  } while (0)

}  // namespace

// ---- inference.GRPCInferenceService ---------------------------------------------------------

class GrpcServer::InferenceHandler final
    : public inference::GRPCInferenceService::WithCallbackMethod_ModelInfer<
          inference::GRPCInferenceService::Service> {
 public:
  InferenceHandler(serving::InferenceService* inference, serving::AdminService* admin,
                   serving::RoutingAdmin* routing, security::AccessGuard* guard)
      : inference_(inference), admin_(admin), routing_(routing), guard_(guard) {
    if (routing_ != nullptr) {
      resolve_ = [this](const std::string& model, const std::string& label) {
        return routing_->ResolveLabel(model, label);
      };
    }
  }

  // A version number, or a label naming one.
  core::Result<int64_t> Version(const std::string& model, const std::string& text) const {
    auto version = core::ParseModelVersion(text);
    if (!version.ok() && resolve_ && !std::isdigit(static_cast<unsigned char>(text[0]))) {
      return resolve_(model, text);
    }
    return version;
  }

  ::grpc::Status ServerLive(ServerContext* context, const inference::ServerLiveRequest*,
                            inference::ServerLiveResponse* response) override {
    SLIPWAY_ADMIT(kHealth);
    response->set_live(inference_->ServerLive());
    return ::grpc::Status::OK;
  }

  ::grpc::Status ServerReady(ServerContext* context, const inference::ServerReadyRequest*,
                             inference::ServerReadyResponse* response) override {
    SLIPWAY_ADMIT(kHealth);
    response->set_ready(inference_->ServerReady());
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelReady(ServerContext* context, const inference::ModelReadyRequest* request,
                            inference::ModelReadyResponse* response) override {
    SLIPWAY_ADMIT(kInfer);
    auto version = Version(request->name(), request->version());
    if (!version.ok()) return ToGrpcStatus(version.status());
    auto ready = inference_->ModelReady(request->name(), version.value());
    if (ready.ok()) {
      response->set_ready(ready.value());
      return ::grpc::Status::OK;
    }
    // A model that exists but cannot serve (failed, loading, draining) is a negative answer,
    // not an error; an unknown model or version is NOT_FOUND.
    if (ready.status().code() == core::StatusCode::kUnavailable) {
      response->set_ready(false);
      return ::grpc::Status::OK;
    }
    return ToGrpcStatus(ready.status());
  }

  ::grpc::Status ServerMetadata(ServerContext* context, const inference::ServerMetadataRequest*,
                                inference::ServerMetadataResponse* response) override {
    SLIPWAY_ADMIT(kInfer);
    const serving::ServerMetadata metadata = inference_->GetServerMetadata();
    response->set_name(metadata.name);
    response->set_version(metadata.version);
    for (const std::string& extension : metadata.extensions) response->add_extensions(extension);
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelMetadata(ServerContext* context, const inference::ModelMetadataRequest* request,
                               inference::ModelMetadataResponse* response) override {
    SLIPWAY_ADMIT(kInfer);
    auto version = Version(request->name(), request->version());
    if (!version.ok()) return ToGrpcStatus(version.status());
    auto metadata = inference_->GetModelMetadata(request->name(), version.value());
    if (!metadata.ok()) return ToGrpcStatus(metadata.status());
    response->set_name(metadata->name);
    for (const std::string& v : metadata->versions) response->add_versions(v);
    response->set_platform(metadata->platform);
    for (const auto& t : metadata->inputs) FillTensorMetadata(t, response->add_inputs());
    for (const auto& t : metadata->outputs) FillTensorMetadata(t, response->add_outputs());
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelConfig(ServerContext* context, const inference::ModelConfigRequest* request,
                             inference::ModelConfigResponse* response) override {
    SLIPWAY_ADMIT(kInfer);
    auto version = Version(request->name(), request->version());
    if (!version.ok()) return ToGrpcStatus(version.status());
    auto config = inference_->GetModelConfig(request->name(), version.value());
    if (!config.ok()) return ToGrpcStatus(config.status());
    EncodeModelConfig(config.value(), response->mutable_config());
    return ::grpc::Status::OK;
  }

  // ModelInfer uses gRPC's callback API: no thread hand-off per call, and the reactor finishes
  // whenever the service's callback runs. The request message outlives the reactor, so decoded
  // tensors may borrow its bytes until then.
  ::grpc::ServerUnaryReactor* ModelInfer(::grpc::CallbackServerContext* context,
                                         const inference::ModelInferRequest* request,
                                         inference::ModelInferResponse* response) override {
    ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (::grpc::Status admitted = Admit(guard_, *context, security::Access::kInfer);
        !admitted.ok()) {
      reactor->Finish(admitted);
      return reactor;
    }
    core::InferRequest decoded;
    core::Status status = DecodeModelInferRequest(*request, &decoded, resolve_);
    if (status.ok() && decoded.parameters.count("routing_key") == 0) {
      auto key = context->client_metadata().find("slipway-routing-key");
      if (key != context->client_metadata().end()) {
        decoded.parameters["routing_key"] = std::string(key->second.data(), key->second.size());
      }
    }
    if (!status.ok()) {
      reactor->Finish(ToGrpcStatus(status));
      return reactor;
    }
    // Queued work of a caller that has gone is dropped instead of run.
    decoded.cancelled = [context] { return context->IsCancelled(); };
    inference_->Infer(std::move(decoded),
                      [reactor, response](core::Result<core::InferResponse> result) {
                        if (!result.ok()) return reactor->Finish(ToGrpcStatus(result.status()));
                        EncodeModelInferResponse(result.value(), response);
                        reactor->Finish(::grpc::Status::OK);
                      });
    return reactor;
  }

  ::grpc::Status ModelStreamInfer(
      ServerContext* context,
      ::grpc::ServerReaderWriter<inference::ModelStreamInferResponse,
                                 inference::ModelInferRequest>* stream) override {
    SLIPWAY_ADMIT(kInfer);
    inference::ModelInferRequest request;
    bool first = true;
    while (stream->Read(&request)) {
      inference::ModelStreamInferResponse response;
      // Each message after the first is one more request for the rate limit.
      const ::grpc::Status admitted =
          first ? ::grpc::Status::OK : Admit(guard_, *context, security::Access::kInfer);
      first = false;
      const core::Status status =
          admitted.ok()
              ? RunInference(*inference_, request, response.mutable_infer_response(), resolve_)
              : core::Status::ResourceExhausted(admitted.error_message());
      if (!status.ok()) {
        // A failed request does not end the stream: answer it with the error and go on.
        response.Clear();
        response.set_error_message(status.message());
        auto* answer = response.mutable_infer_response();
        answer->set_id(request.id());
        answer->set_model_name(request.model_name());
        answer->set_model_version(request.model_version());
      }
      // Non-decoupled models answer each request exactly once, so every response is final.
      (*response.mutable_infer_response()->mutable_parameters())["triton_final_response"]
          .set_bool_param(true);
      if (!stream->Write(response)) break;  // the client has gone or the call was cancelled
      request.Clear();
    }
    return ::grpc::Status::OK;
  }

  ::grpc::Status ModelStatistics(ServerContext* context, const inference::ModelStatisticsRequest* request,
                                 inference::ModelStatisticsResponse* response) override {
    SLIPWAY_ADMIT(kInfer);
    auto version = Version(request->name(), request->version());
    if (!version.ok()) return ToGrpcStatus(version.status());
    auto stats = inference_->GetModelStatistics(request->name(), version.value());
    if (!stats.ok()) return ToGrpcStatus(stats.status());
    for (const serving::ModelStatistics& m : *stats) EncodeModelStatistics(m, response->add_model_stats());
    return ::grpc::Status::OK;
  }

  ::grpc::Status RepositoryIndex(ServerContext* context, const inference::RepositoryIndexRequest* request,
                                 inference::RepositoryIndexResponse* response) override {
    SLIPWAY_ADMIT(kAdmin);
    if (admin_ == nullptr) {
      return ::grpc::Status(::grpc::StatusCode::UNIMPLEMENTED,
                            "the repository API is not enabled on this server");
    }
    for (const serving::RepositoryIndexEntry& entry : admin_->RepositoryIndex(request->ready())) {
      auto* model = response->add_models();
      model->set_name(entry.name);
      model->set_version(entry.version);
      model->set_state(entry.state);
      model->set_reason(entry.reason);
    }
    return ::grpc::Status::OK;
  }

  ::grpc::Status RepositoryModelLoad(ServerContext* context,
                                     const inference::RepositoryModelLoadRequest* request,
                                     inference::RepositoryModelLoadResponse*) override {
    SLIPWAY_ADMIT(kAdmin);
    if (admin_ == nullptr) {
      return ::grpc::Status(::grpc::StatusCode::UNIMPLEMENTED,
                            "the repository API is not enabled on this server");
    }
    serving::LoadModelOptions options;
    for (const auto& [key, value] : request->parameters()) {
      if (key == "config") {
        if (value.parameter_choice_case() != inference::ModelRepositoryParameter::kStringParam) {
          return ::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                                "parameter 'config' must be a string_param holding a model "
                                "config in JSON");
        }
        options.config_override = value.string_param();
      } else if (key.rfind("file:", 0) == 0) {
        return ::grpc::Status(::grpc::StatusCode::UNIMPLEMENTED,
                              "load parameter '" + key + "': upload model files with PUT "
                              "/v2/repository/models/<model>/versions/<version>");
      }
    }
    return ToGrpcStatus(admin_->LoadModel(request->model_name(), options));
  }

  ::grpc::Status RepositoryModelUnload(ServerContext* context,
                                       const inference::RepositoryModelUnloadRequest* request,
                                       inference::RepositoryModelUnloadResponse*) override {
    SLIPWAY_ADMIT(kAdmin);
    if (admin_ == nullptr) {
      return ::grpc::Status(::grpc::StatusCode::UNIMPLEMENTED,
                            "the repository API is not enabled on this server");
    }
    return ToGrpcStatus(admin_->UnloadModel(request->model_name()));
  }

 private:
  serving::InferenceService* inference_;  // not owned
  serving::AdminService* admin_;          // not owned, may be null
  serving::RoutingAdmin* routing_;        // not owned, may be null
  security::AccessGuard* guard_;          // not owned, may be null
  LabelResolver resolve_;
};

// ---- grpc.health.v1.Health -----------------------------------------------------------------

class GrpcServer::HealthHandler final : public ::grpc::health::v1::Health::Service {
 public:
  HealthHandler(serving::InferenceService* inference, security::AccessGuard* guard)
      : inference_(inference), guard_(guard) {}

  // Like Triton: SERVING whenever the server is live, whatever `service` names.
  ::grpc::Status Check(ServerContext* context, const ::grpc::health::v1::HealthCheckRequest*,
                       ::grpc::health::v1::HealthCheckResponse* response) override {
    SLIPWAY_ADMIT(kHealth);
    response->set_status(inference_->ServerLive()
                             ? ::grpc::health::v1::HealthCheckResponse::SERVING
                             : ::grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    return ::grpc::Status::OK;
  }

 private:
  serving::InferenceService* inference_;  // not owned
  security::AccessGuard* guard_;          // not owned, may be null
};

// ---- GrpcServer ----------------------------------------------------------------------------

GrpcServer::GrpcServer() = default;

GrpcServer::~GrpcServer() { Shutdown(std::chrono::milliseconds(0)); }

core::Result<std::unique_ptr<GrpcServer>> GrpcServer::Create(GrpcServerOptions options) {
  if (options.inference == nullptr) {
    return core::Status::InvalidArgument("GrpcServerOptions.inference must be set");
  }
  if (options.host.empty()) {
    return core::Status::InvalidArgument("GrpcServerOptions.host must not be empty");
  }
  if (options.port < 0 || options.port > 65535) {
    return core::Status::InvalidArgument("GrpcServerOptions.port must be in [0, 65535], got " +
                                         std::to_string(options.port));
  }
  if (options.max_message_bytes <= 0 && options.max_message_bytes != -1) {
    return core::Status::InvalidArgument(
        "GrpcServerOptions.max_message_bytes must be positive or -1 (unlimited), got " +
        std::to_string(options.max_message_bytes));
  }
  if (options.max_threads < 2) {
    return core::Status::InvalidArgument("GrpcServerOptions.max_threads must be at least 2, got " +
                                         std::to_string(options.max_threads));
  }

  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->inference_handler_ = std::make_unique<InferenceHandler>(options.inference, options.admin, options.routing,
                                                                  options.guard);
  server->health_handler_ = std::make_unique<HealthHandler>(options.inference, options.guard);

  const std::string address = ListenAddress(options.host, options.port);
  ::grpc::ServerBuilder builder;
  int bound_port = 0;
  std::shared_ptr<::grpc::ServerCredentials> credentials = ::grpc::InsecureServerCredentials();
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty() ||
      !options.tls_client_ca_file.empty()) {
    ASSIGN_OR_RETURN(credentials, TlsCredentials(options, &server->tls_provider_));
  }
  builder.AddListeningPort(address, credentials, &bound_port);
  // Without SO_REUSEPORT a second server on the same port fails to bind instead of silently
  // sharing the port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);

  // Sized for a small box: one completion queue, few pollers; handler threads bounded by quota.
  ::grpc::ResourceQuota quota("slipway_grpc");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  builder.SetSyncServerOption(::grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(::grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(::grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 1);

  builder.RegisterService(server->inference_handler_.get());
  builder.RegisterService(server->health_handler_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || bound_port == 0) {
    if (server->server_ != nullptr) {
      server->server_->Shutdown();
      server->server_.reset();
    }
    server->shut_down_ = true;
    return core::Status::Unavailable("gRPC server could not bind " + address +
                                     " (is the port in use or the address not local?)");
  }
  server->port_ = bound_port;
  spdlog::info("gRPC server listening on {}{}", ListenAddress(options.host, bound_port),
               server->tls_provider_ == nullptr                ? ""
               : options.tls_client_ca_file.empty() ? " (TLS)"
                                                    : " (TLS, client certificates required)");
  return server;
}

void GrpcServer::Shutdown(std::chrono::milliseconds deadline) {
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
  spdlog::info("gRPC server on port {} stopped", port_);
}

}  // namespace slipway::frontends::grpc
