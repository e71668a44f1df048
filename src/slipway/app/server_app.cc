#include "slipway/app/server_app.h"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <cstdlib>
#include <thread>

#include "slipway/backend/backend_registry.h"
#include "slipway/cache/redis_tier.h"
#include "slipway/cache/response_cache.h"
#include "slipway/backends/onnxruntime/onnxruntime_backend.h"
#ifdef SLIPWAY_WITH_LIBTORCH
#include "slipway/backends/libtorch/libtorch_backend.h"
#endif
#ifdef SLIPWAY_WITH_XGBOOST
#include "slipway/backends/xgboost/xgboost_backend.h"
#endif
#include "slipway/frontends/grpc/grpc_server.h"
#include "slipway/frontends/http/http_server.h"
#include "slipway/lifecycle/model_manager.h"
#include "slipway/repository/model_repository.h"
#include "slipway/routing/deployment_store.h"
#include "slipway/monitoring/drift_monitor.h"
#include "slipway/monitoring/feedback_tracker.h"
#include "slipway/monitoring/metrics_exporter.h"
#include "slipway/monitoring/prometheus_text.h"
#include "slipway/monitoring/request_log.h"
#include "slipway/monitoring/retrain_trigger.h"
#include "slipway/routing/router.h"
#include "slipway/security/access_guard.h"
#include "slipway/serving/serving_core.h"

namespace slipway::app {

namespace {

// The response cache per model: Triton's nv_cache_* series (durations in microseconds, as
// Triton's) and Slipway's own for what Triton has no series for.
void WriteCacheMetrics(const cache::ResponseCache& c, monitoring::PrometheusText& out) {
  const auto all = c.AllModelStats();
  struct Series {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const cache::CacheStats&);
  };
  static const Series kSeries[] = {
      {"nv_cache_num_hits_per_model", "counter", "Requests answered from the response cache",
       [](const cache::CacheStats& s) { return static_cast<double>(s.hits); }},
      {"nv_cache_num_misses_per_model", "counter", "Cacheable requests the model computed",
       [](const cache::CacheStats& s) { return static_cast<double>(s.misses); }},
      {"nv_cache_hit_duration_per_model", "counter", "Microseconds spent answering hits",
       [](const cache::CacheStats& s) { return static_cast<double>(s.hit_ns) / 1e3; }},
      {"nv_cache_miss_duration_per_model", "counter",
       "Microseconds spent looking up and keeping misses",
       [](const cache::CacheStats& s) { return static_cast<double>(s.miss_ns) / 1e3; }},
      {"slipway_cache_coalesced_total", "counter",
       "Hits that waited for an identical request in flight (single flight)",
       [](const cache::CacheStats& s) { return static_cast<double>(s.coalesced); }},
      {"slipway_cache_evictions_total", "counter", "Answers evicted to stay within --cache-bytes",
       [](const cache::CacheStats& s) { return static_cast<double>(s.evictions); }},
      {"slipway_cache_expirations_total", "counter",
       "Answers dropped past their TTL or answered by a replaced version",
       [](const cache::CacheStats& s) { return static_cast<double>(s.expirations); }},
      {"slipway_cache_entries", "gauge", "Answers kept now",
       [](const cache::CacheStats& s) { return static_cast<double>(s.entries); }},
      {"slipway_cache_bytes", "gauge", "Bytes of answers kept now (counted against --cache-bytes)",
       [](const cache::CacheStats& s) { return static_cast<double>(s.bytes); }},
      {"slipway_cache_shared_hits_total", "counter", "Local misses answered by the Redis tier",
       [](const cache::CacheStats& s) { return static_cast<double>(s.shared_hits); }},
      {"slipway_cache_shared_errors_total", "counter",
       "Redis lookups that failed, timed out, were skipped while it was down, or were malformed",
       [](const cache::CacheStats& s) { return static_cast<double>(s.shared_errors); }},
  };
  for (const Series& series : kSeries) {
    out.Family(series.name, series.type, series.help);
    for (const auto& [model, stats] : all) {
      out.Sample(series.name, {{"model", model}}, series.value(stats));
    }
  }
}

void RegisterBackends(backend::BackendRegistry& registry, const ServeOptions& options) {
  backends::onnxruntime::OnnxRuntimeBackendOptions ort;
  ort.allow_spinning = options.allow_spinning;
  registry.Register(backends::onnxruntime::CreateOnnxRuntimeBackend(ort));
  // The optional backends are registered when CMake built them (cmake/OptionalBackends.cmake).
#ifdef SLIPWAY_WITH_LIBTORCH
  registry.Register(backends::libtorch::CreateLibTorchBackend());
#endif
#ifdef SLIPWAY_WITH_XGBOOST
  registry.Register(backends::xgboost::CreateXgboostBackend({}));
#endif
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("slipway");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

// SIGHUP: the HTTP listeners with TLS build a fresh context from the certificate files; gRPC
// rereads the files itself (GrpcServerOptions::tls_refresh_seconds).
void ReloadTlsCertificates(const ServeOptions& options,
                           std::initializer_list<frontends::http::HttpServer*> servers) {
  if (options.tls_cert_file.empty()) {
    spdlog::info("SIGHUP: TLS is off; no certificate to reload");
    return;
  }
  for (frontends::http::HttpServer* server : servers) {
    if (server == nullptr || !server->tls_enabled()) continue;
    if (auto st = server->ReloadTls(); st.ok()) {
      spdlog::info("SIGHUP: reloaded TLS certificate '{}' on HTTP port {}", options.tls_cert_file,
                   server->port());
    } else {
      spdlog::error("SIGHUP: TLS certificate not reloaded on HTTP port {}, the current one "
                    "stays (gRPC rereads the same files by itself and may refuse connections "
                    "until they are fixed): {}",
                    server->port(), st.message());
    }
  }
}

}  // namespace

int RunServe(const ServeOptions& options) {
  SetUpLogging(options.log_level);
  // Block the shutdown signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
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
  cache::ResponseCache* response_cache = nullptr;  // set before the first load, when enabled
  lifecycle::ModelManager::Options mm;
  mm.pinned_versions = [&router](const std::string& model) {
    return router ? router->PinnedVersions(model) : std::vector<int64_t>{};
  };
  mm.on_event = [&router, &response_cache](const lifecycle::ModelEvent& e) {
    // A loaded (or reloaded) or unloaded version's answers go; so do the default version's.
    if (response_cache != nullptr && (e.kind == "load" || e.kind == "unload")) {
      response_cache->DropVersion(e.model, e.version);
    }
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
  sc.limits.max_tensor_elements = options.max_tensor_elements;
  sc.limits.max_string_bytes = options.max_string_bytes;
  auto core = serving::ServingCore::Create(sc);
  if (!core.ok()) {
    spdlog::critical("{}", core.status().message());
    return 2;
  }
  // Response cache between the router (versions chosen) and the core.
  std::unique_ptr<cache::RedisTier> redis;
  if (!options.cache_redis.empty()) {
    cache::RedisTier::Options rt;
    const size_t colon = options.cache_redis.rfind(':');
    rt.host = options.cache_redis.substr(0, colon);
    try {
      rt.port = colon == std::string::npos ? 6379 : std::stoi(options.cache_redis.substr(colon + 1));
    } catch (const std::exception&) {
      rt.port = -1;
    }
    if (rt.host.empty() || rt.port <= 0 || rt.port > 65535) {
      spdlog::critical("--cache-redis: expected HOST:PORT, got '{}'", options.cache_redis);
      return 2;
    }
    rt.connect_timeout = rt.command_timeout = std::chrono::milliseconds(options.cache_redis_timeout_ms);
    auto created = cache::RedisTier::Create(rt);
    if (!created.ok()) {
      spdlog::critical("--cache-redis: {}", created.status().message());
      return 2;
    }
    redis = std::move(created).value();
  }
  std::unique_ptr<cache::ResponseCache> cache_owner;
  serving::InferenceService* below_router = core->get();
  if (options.cache_bytes > 0) {
    cache::ResponseCache::Options co;
    co.inner = core->get();
    co.max_bytes = options.cache_bytes;
    co.shared = redis.get();
    auto created = cache::ResponseCache::Create(co);
    if (!created.ok()) {
      spdlog::critical("{}", created.status().message());
      return 2;
    }
    cache_owner = std::move(created).value();
    response_cache = cache_owner.get();
    below_router = response_cache;
  }
  routing::Router::Options ro;
  ro.inner = below_router;
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
  mo.extra = [trigger = retrain->get(), response_cache, drift_monitor = drift->get(),
              request_logger = logger->get()](monitoring::PrometheusText& out) {
    trigger->WriteMetrics(out);
    if (response_cache != nullptr) WriteCacheMetrics(*response_cache, out);
    // The background workers' queues are bounded: what did not fit is dropped and counted here,
    // so a figure read from the drift report or the logs can be checked for gaps.
    out.Family("slipway_drift_observations_dropped_total", "counter",
               "Observations drift detection dropped because its worker's queue was full");
    out.Sample("slipway_drift_observations_dropped_total", {},
               static_cast<double>(drift_monitor->dropped()));
    out.Family("slipway_request_log_lines_dropped_total", "counter",
               "Access and payload log lines dropped because the writer's queue was full");
    out.Sample("slipway_request_log_lines_dropped_total", {},
               static_cast<double>(request_logger->dropped_lines()));
  };
  auto exporter = monitoring::MetricsExporter::Create(mo);
  if (!exporter.ok()) {
    spdlog::critical("{}", exporter.status().message());
    return 2;
  }
  security::AccessGuard::Options go;
  go.keys_file = options.api_keys_file;
  if (const char* env = std::getenv("SLIPWAY_API_KEYS")) go.keys_env = env;
  go.open_health = go.open_metrics = false;
  for (std::string_view rest = options.open_endpoints; !rest.empty();) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item == "health") {
      go.open_health = true;
    } else if (item == "metrics") {
      go.open_metrics = true;
    } else if (item != "none" && !item.empty()) {
      spdlog::critical("--open-endpoints: unknown endpoint '{}' (health, metrics or none)", item);
      return 2;
    }
  }
  go.rate_per_second = options.rate_limit;
  go.burst = options.rate_limit_burst;
  auto guard = security::AccessGuard::Create(go);
  if (!guard.ok()) {
    spdlog::critical("{}", guard.status().message());
    return 2;
  }
  if ((*guard)->auth_enabled()) {
    spdlog::info("API keys required (open without a key: {})", options.open_endpoints);
  } else if (options.admin_http_port < 0) {
    spdlog::warn("no API keys configured: anyone who can reach port {} can load, unload and "
                 "reroute models (see --api-keys-file, --admin-http-port)", options.http_port);
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty() ||
      (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty())) {
    spdlog::critical("--tls-cert and --tls-key go together, and --tls-client-ca needs both");
    return 2;
  }
  if (!options.tls_cert_file.empty()) {
    spdlog::info("TLS on the HTTP and gRPC ports with certificate '{}'{}; the metrics port stays "
                 "plain HTTP",
                 options.tls_cert_file,
                 options.tls_client_ca_file.empty() ? "" : ", client certificates required");
  }
  frontends::http::HttpServerOptions http;
  http.tls_cert_file = options.tls_cert_file;
  http.tls_key_file = options.tls_key_file;
  http.tls_client_ca_file = options.tls_client_ca_file;
  http.guard = guard->get();
  http.max_header_bytes = options.http_max_header_bytes;
  http.idle_timeout_seconds = options.http_idle_timeout_seconds;
  http.request_timeout_seconds = options.http_request_timeout_seconds;
  if (options.admin_http_port >= 0) http.serves = frontends::http::RouteContext::Serves::kAllButAdmin;
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
  grpc.tls_cert_file = options.tls_cert_file;
  grpc.tls_key_file = options.tls_key_file;
  grpc.tls_client_ca_file = options.tls_client_ca_file;
  grpc.guard = guard->get();
  auto grpc_server = frontends::grpc::GrpcServer::Create(grpc);
  if (!grpc_server.ok()) {
    spdlog::critical("{}", grpc_server.status().message());
    return 2;
  }
  std::unique_ptr<frontends::http::HttpServer> admin_server;
  if (options.admin_http_port >= 0) {
    frontends::http::HttpServerOptions ah = http;
    ah.host = options.admin_host;
    ah.port = options.admin_http_port;
    ah.serves = frontends::http::RouteContext::Serves::kAdminOnly;
    ah.io_threads = 2;
    auto created = frontends::http::HttpServer::Create(ah);
    if (!created.ok()) {
      spdlog::critical("admin port: {}", created.status().message());
      return 2;
    }
    admin_server = std::move(created).value();
  }
  std::unique_ptr<frontends::http::HttpServer> metrics_server;
  if (options.metrics_port >= 0) {
    frontends::http::HttpServerOptions mh = http;
    mh.port = options.metrics_port;
    mh.metrics_only = true;
    // Plain HTTP, for Prometheus scrapers, whatever the other ports speak.
    mh.tls_cert_file.clear();
    mh.tls_key_file.clear();
    mh.tls_client_ca_file.clear();
    mh.serves = frontends::http::RouteContext::Serves::kAll;
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
  if (admin_server) {
    if (auto st = admin_server->Start(); !st.ok()) {
      spdlog::critical("{}", st.message());
      return 2;
    }
    spdlog::info("admin endpoints on {}:{} only", options.admin_host, admin_server->port());
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
  while (true) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    ReloadTlsCertificates(options, {http_server->get(), admin_server.get()});
    // SIGHUP: reread what may change without a restart.
    if (auto st = (*guard)->Reload(); st.ok()) {
      spdlog::info("SIGHUP: API keys reread");
    } else {
      spdlog::error("SIGHUP: API keys kept as they were: {}", st.message());
    }
  }
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
  std::thread http_drain([&http_server, &metrics_server, &admin_server] {
    (*http_server)->Shutdown();
    if (admin_server) admin_server->Shutdown();
    if (metrics_server) metrics_server->Shutdown();
  });
  (*grpc_server)->Shutdown(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  http_drain.join();
  // Tear down from the inside out while every link is still alive: no more rollout decisions or
  // drift judgements (both call into the models), then the models, whose destruction answers
  // anything still queued through the links' callbacks.
  router->Stop();
  (*drift)->Stop();
  if (response_cache != nullptr) response_cache->Flush();  // answers queued for Redis
  manager->reset();
  spdlog::info("drained; exiting");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace slipway::app
