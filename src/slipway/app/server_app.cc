#include "slipway/app/server_app.h"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "slipway/backend/backend_registry.h"
#include "slipway/backends/onnxruntime/onnxruntime_backend.h"
#include "slipway/frontends/grpc/grpc_server.h"
#include "slipway/frontends/http/http_server.h"
#include "slipway/lifecycle/model_manager.h"
#include "slipway/repository/model_repository.h"
#include "slipway/serving/serving_core.h"

namespace slipway::app {

namespace {

void RegisterBackends(backend::BackendRegistry& registry, const ServeOptions& options) {
  backends::onnxruntime::OnnxRuntimeBackendOptions ort;
  ort.allow_spinning = options.allow_spinning;
  registry.Register(backends::onnxruntime::CreateOnnxRuntimeBackend(ort));
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("slipway");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int RunServe(const ServeOptions& options) {
  SetUpLogging(options.log_level);
  // Block the shutdown signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto repo = repository::ModelRepository::Create({options.model_repository});
  if (!repo.ok()) {
    spdlog::critical("{}", repo.status().message());
    return 2;
  }
  backend::BackendRegistry registry;
  RegisterBackends(registry, options);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  lifecycle::ModelManager::Options mm;
  mm.repository = repo->get();
  mm.backends = &registry;
  mm.intra_op_threads = std::max(1, options.intra_op_threads);
  mm.default_instance_count = options.instance_count > 0
                                  ? options.instance_count
                                  : std::max(1, cores / mm.intra_op_threads);
  auto manager = lifecycle::ModelManager::Create(mm);
  if (!manager.ok()) {
    spdlog::critical("{}", manager.status().message());
    return 2;
  }
  serving::ServingCore::Options sc;
  sc.models = manager->get();
  sc.strict_readiness = options.strict_readiness;
  auto core = serving::ServingCore::Create(sc);
  if (!core.ok()) {
    spdlog::critical("{}", core.status().message());
    return 2;
  }
  (*manager)->LoadAll();

  frontends::http::HttpServerOptions http;
  http.host = options.host;
  http.port = options.http_port;
  http.inference = core->get();
  http.admin = core->get();
  http.max_body_bytes = options.http_max_body_bytes;
  http.io_threads = options.http_threads;
  auto http_server = frontends::http::HttpServer::Create(http);
  if (!http_server.ok()) {
    spdlog::critical("{}", http_server.status().message());
    return 2;
  }
  frontends::grpc::GrpcServerOptions grpc;
  grpc.host = options.host;
  grpc.port = options.grpc_port;
  grpc.inference = core->get();
  grpc.admin = core->get();
  auto grpc_server = frontends::grpc::GrpcServer::Create(grpc);
  if (!grpc_server.ok()) {
    spdlog::critical("{}", grpc_server.status().message());
    return 2;
  }
  // HTTP listens only once gRPC is up, so a server that cannot take both ports never answers.
  if (auto st = (*http_server)->Start(); !st.ok()) {
    spdlog::critical("{}", st.message());
    return 2;
  }
  spdlog::info("serving '{}': HTTP on {}:{}, gRPC on {}:{}", options.model_repository,
               options.host, (*http_server)->port(), options.host, (*grpc_server)->port());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}; draining (timeout {} s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               options.drain_timeout_seconds);
  (*core)->StartDraining();
  const auto timeout = std::chrono::seconds(options.drain_timeout_seconds);
  std::thread watchdog([timeout] {
    std::this_thread::sleep_for(timeout);
    spdlog::warn("drain timeout reached; exiting with requests still in flight");
    spdlog::default_logger()->flush();
    std::_Exit(0);
  });
  watchdog.detach();
  // Both frontends drain at once: an open gRPC stream must not hold up the HTTP side.
  std::thread http_drain([&http_server] { (*http_server)->Shutdown(); });
  (*grpc_server)->Shutdown(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  http_drain.join();
  spdlog::info("drained; exiting");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace slipway::app
