#include "slipway/app/server_app.h"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <thread>

#include "slipway/backend/backend_registry.h"
#include "slipway/backends/onnxruntime/onnxruntime_backend.h"
#include "slipway/frontends/grpc/grpc_server.h"
#include "slipway/frontends/http/http_server.h"
#include "slipway/lifecycle/model_manager.h"
#include "slipway/repository/model_repository.h"
#include "slipway/routing/deployment_store.h"
#include "slipway/monitoring/drift_monitor.h"
#include "slipway/monitoring/feedback_tracker.h"
#include "slipway/monitoring/metrics_exporter.h"
#include "slipway/monitoring/request_log.h"
#include "slipway/monitoring/retrain_trigger.h"
#include "slipway/routing/router.h"
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
  // The deployment record: labels, traffic and rollouts survive restarts through it.
  std::string state_db = options.state_db;
  if (state_db.empty()) state_db = options.model_repository + "/.slipway/deployments.db";
  auto store = routing::DeploymentStore::Create({state_db});
  if (!store.ok()) {
    spdlog::warn("{}; keeping the deployment record in memory only", store.status().message());
    store = routing::DeploymentStore::Create({":memory:"});
    if (!store.ok()) {
      spdlog::critical("{}", store.status().message());
      return 2;
    }
  }
  // The router is built after the core it wraps, but the manager asks it for pinned versions
  // and tells it about events from the start; `router` is set before the first load.
  routing::Router* router = nullptr;
  lifecycle::ModelManager::Options mm;
  mm.pinned_versions = [&router](const std::string& model) {
    return router ? router->PinnedVersions(model) : std::vector<int64_t>{};
  };
  mm.on_event = [&router](const lifecycle::ModelEvent& e) {
    if (router) router->OnModelEvent(e.model, e.kind, e.version, e.reason);
  };
  mm.retire_grace = std::chrono::milliseconds(options.version_retire_grace_ms);
  mm.reference_version = [&router](const std::string& model) -> int64_t {
    auto view = router ? router->GetRouting(model) : core::Result<serving::RoutingView>(
                                                         core::Status::NotFound(""));
    return view.ok() ? view->default_version : 0;
  };
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
  sc.control = options.model_control_mode == "none"   ? serving::ModelControl::kNone
               : options.model_control_mode == "poll" ? serving::ModelControl::kPoll
                                                      : serving::ModelControl::kExplicit;
  sc.strict_readiness = options.strict_readiness;
  auto core = serving::ServingCore::Create(sc);
  if (!core.ok()) {
    spdlog::critical("{}", core.status().message());
    return 2;
  }
  routing::Router::Options ro;
  ro.inner = core->get();
  ro.admin = core->get();
  ro.store = store->get();
  auto router_owner = routing::Router::Create(ro);
  if (!router_owner.ok()) {
    spdlog::critical("{}", router_owner.status().message());
    return 2;
  }
  router = router_owner->get();
  // Outermost link: gives every answer an id and remembers predictions for fed-back truth.
  monitoring::RetrainTrigger::Options rto;
  rto.default_webhook = options.retrain_webhook;
  rto.payload_log_dir = options.payload_log_dir;
  auto retrain = monitoring::RetrainTrigger::Create(rto);
  if (!retrain.ok()) {
    spdlog::critical("--retrain-webhook: {}", retrain.status().message());
    return 2;
  }
  monitoring::DriftMonitor::Options dmo;
  dmo.inner = router;
  dmo.on_drift = [trigger = retrain->get()](const serving::DriftReport& report,
                                            const core::ModelConfig& config) {
    trigger->OnDrift(report, config);
  };
  auto drift = monitoring::DriftMonitor::Create(dmo);
  if (!drift.ok()) {
    spdlog::critical("{}", drift.status().message());
    return 2;
  }
  monitoring::RequestLogger::Options lo;
  lo.inner = drift->get();
  lo.access_log = options.access_log;
  lo.payload_dir = options.payload_log_dir;
  lo.payload_sample = options.payload_log_sample;
  lo.payload_file_bytes = static_cast<uint64_t>(options.payload_log_file_mb) << 20;
  lo.payload_files = options.payload_log_files;
  auto logger = monitoring::RequestLogger::Create(lo);
  if (!logger.ok()) {
    spdlog::critical("{}", logger.status().message());
    return 2;
  }
  monitoring::FeedbackTracker::Options fo;
  fo.inner = logger->get();
  fo.on_low_accuracy = [trigger = retrain->get(), core = core->get()](
                           const std::string& model, int64_t version, double accuracy) {
    auto config = core->GetModelConfig(model, version);
    if (config.ok()) trigger->OnLowAccuracy(model, version, accuracy, *config);
  };
  auto tracker = monitoring::FeedbackTracker::Create(fo);
  if (!tracker.ok()) {
    spdlog::critical("{}", tracker.status().message());
    return 2;
  }
  router->SetGroundTruth(tracker->get());
  router->Restore();
  (*manager)->LoadAll();
  router->Start();
  monitoring::MetricsExporter::Options mo;
  mo.inference = core->get();
  mo.ground_truth = tracker->get();
  mo.routing = router;
  mo.drift = drift->get();
  mo.extra = [trigger = retrain->get()](monitoring::PrometheusText& out) {
    trigger->WriteMetrics(out);
  };
  auto exporter = monitoring::MetricsExporter::Create(mo);
  if (!exporter.ok()) {
    spdlog::critical("{}", exporter.status().message());
    return 2;
  }
  frontends::http::HttpServerOptions http;
  http.metrics = exporter->get();
  http.host = options.host;
  http.port = options.http_port;
  http.inference = tracker->get();
  http.ground_truth = tracker->get();
  http.drift = drift->get();
  http.admin = core->get();
  http.routing = router;
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
  grpc.inference = tracker->get();
  grpc.admin = core->get();
  grpc.routing = router;
  auto grpc_server = frontends::grpc::GrpcServer::Create(grpc);
  if (!grpc_server.ok()) {
    spdlog::critical("{}", grpc_server.status().message());
    return 2;
  }
  std::unique_ptr<frontends::http::HttpServer> metrics_server;
  if (options.metrics_port >= 0) {
    frontends::http::HttpServerOptions mh = http;
    mh.port = options.metrics_port;
    mh.metrics_only = true;
    mh.io_threads = 1;
    auto created = frontends::http::HttpServer::Create(mh);
    if (!created.ok()) {
      spdlog::critical("metrics port: {}", created.status().message());
      return 2;
    }
    metrics_server = std::move(created).value();
  }
  // HTTP listens only once gRPC is up, so a server that cannot take every port never answers.
  if (auto st = (*http_server)->Start(); !st.ok()) {
    spdlog::critical("{}", st.message());
    return 2;
  }
  if (metrics_server) {
    if (auto st = metrics_server->Start(); !st.ok()) {
      spdlog::critical("{}", st.message());
      return 2;
    }
  }
  spdlog::info("serving '{}': HTTP on {}:{}, gRPC on {}:{}, metrics on {}", options.model_repository,
               options.host, (*http_server)->port(), options.host, (*grpc_server)->port(),
               metrics_server ? std::to_string(metrics_server->port()) : "the HTTP port only");

  // Poll mode: rescan the repository until shutdown.
  std::mutex poll_mu;
  std::condition_variable poll_cv;
  bool poll_stop = false;
  std::thread poller;
  if (sc.control == serving::ModelControl::kPoll) {
    poller = std::thread([&] {
      const auto period = std::chrono::duration<double>(options.repository_poll_seconds);
      std::unique_lock<std::mutex> lock(poll_mu);
      while (!poll_cv.wait_for(lock, period, [&] { return poll_stop; })) {
        lock.unlock();
        (*manager)->Poll();
        lock.lock();
      }
    });
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}; draining (timeout {} s)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               options.drain_timeout_seconds);
  (*core)->StartDraining();
  {
    std::lock_guard<std::mutex> lock(poll_mu);
    poll_stop = true;
  }
  poll_cv.notify_all();
  if (poller.joinable()) poller.join();
  const auto timeout = std::chrono::seconds(options.drain_timeout_seconds);
  std::thread watchdog([timeout] {
    std::this_thread::sleep_for(timeout);
    spdlog::warn("drain timeout reached; exiting with requests still in flight");
    spdlog::default_logger()->flush();
    std::_Exit(0);
  });
  watchdog.detach();
  // Both frontends drain at once: an open gRPC stream must not hold up the HTTP side.
  std::thread http_drain([&http_server, &metrics_server] {
    (*http_server)->Shutdown();
    if (metrics_server) metrics_server->Shutdown();
  });
  (*grpc_server)->Shutdown(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  http_drain.join();
  // Tear down from the inside out while every link is still alive: no more rollout decisions or
  // drift judgements (both call into the models), then the models, whose destruction answers
  // anything still queued through the links' callbacks.
  router->Stop();
  (*drift)->Stop();
  manager->reset();
  spdlog::info("drained; exiting");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace slipway::app
