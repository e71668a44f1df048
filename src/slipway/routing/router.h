// Router: the InferenceService link that decides which version answers a request that names none
// (labels, weighted split with sticky routing keys, shadow copies), measures each version's
// traffic, and runs canary rollouts: a controller thread judges the candidate by the rollout
// policy every tick, advances, promotes or rolls back, and records every change with its reason
// in the deployment store.
//
// Requests read the routing table through an atomic pointer (no lock); every change is made under
// one admin mutex, published whole and persisted. A request that names a version is never rerouted.
// Shadow copies own their inputs, never reach the caller and are bounded in flight.
// Thread safety: all public methods are safe from any thread. Infer does not block; admin calls
// block while a version they need loads. PinnedVersions and OnModelEvent are called by the model
// manager and never call back into it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "slipway/core/snapshot.h"
#include "slipway/routing/deployment_store.h"
#include "slipway/routing/route_state.h"
#include "slipway/serving/ground_truth.h"
#include "slipway/serving/forwarding_service.h"
#include "slipway/serving/inference_service.h"
#include "slipway/serving/routing_admin.h"

namespace slipway::routing {

class Router : public serving::ForwardingService, public serving::RoutingAdmin {
 public:
  struct Options {
    serving::InferenceService* inner = nullptr;  // not owned
    serving::AdminService* admin = nullptr;      // not owned; loads pinned versions
    DeploymentStore* store = nullptr;            // not owned; may be null (nothing persisted)
    serving::GroundTruth* ground_truth = nullptr;  // not owned; may be null (no accuracy guard)
    int tick_ms = 100;                           // how often rollouts are judged
    size_t max_shadow_in_flight = 64;            // shadow copies beyond this are skipped
  };
  static core::Result<std::unique_ptr<Router>> Create(Options options);
  ~Router() override;

  // Restores persisted state; call before the models load so their labels pin versions.
  void Restore();
  // The accuracy guard's source, when it wraps the router itself; call before Start.
  void SetGroundTruth(serving::GroundTruth* ground_truth) { options_.ground_truth = ground_truth; }
  // Applies routing sections of loaded configs and starts the controller thread.
  void Start();

  // Stops the controller thread (no more rollout decisions); idempotent. The destructor calls it.
  void Stop();

  // For the model manager.
  std::vector<int64_t> PinnedVersions(const std::string& model) const;
  void OnModelEvent(const std::string& model, const std::string& kind, int64_t version,
                    const std::string& reason);

  // InferenceService
  void Infer(core::InferRequest request, core::InferCallback done) override;
  core::Result<bool> ModelReady(const std::string& name, int64_t version) const override {
    return inner_->ModelReady(name, version == 0 ? DefaultVersion(name) : version);
  }
  core::Result<core::ModelConfig> GetModelConfig(const std::string& name,
                                                 int64_t version) const override {
    return inner_->GetModelConfig(name, version == 0 ? DefaultVersion(name) : version);
  }

  // RoutingAdmin
  core::Result<int64_t> ResolveLabel(const std::string& model,
                                     const std::string& label) const override;
  core::Result<serving::RoutingView> GetRouting(const std::string& model) const override;
  core::Status SetLabel(const std::string& model, const std::string& label,
                        int64_t version) override;
  core::Status DeleteLabel(const std::string& model, const std::string& label) override;
  core::Status SetTraffic(const std::string& model, const serving::TrafficChange& change) override;
  core::Status ClearTraffic(const std::string& model) override;
  core::Status StartRollout(const std::string& model, int64_t version) override;
  core::Status Promote(const std::string& model, int64_t version) override;
  core::Status Rollback(const std::string& model) override;
  core::Result<std::vector<serving::DeploymentEventView>> History(const std::string& model,
                                                                  size_t limit) const override;

 private:
  using Table = std::map<std::string, std::shared_ptr<const RouteState>>;
  struct Event {
    std::string model;
    std::string kind;
    int64_t version;
  };

  class AdminSection;
  explicit Router(Options options) : ForwardingService(options.inner), options_(options) {}
  std::shared_ptr<const RouteState> Find(const std::string& model) const;
  // The stable label's version when it is ready, else 0 (the highest ready version).
  int64_t DefaultVersion(const std::string& model) const;
  bool Ready(const std::string& model, int64_t version) const;
  // Publishes and persists `state` for `model`; admin_mu_ must be held.
  void Publish(const std::string& model, RouteState state);
  // Loads `versions` (pinned while loading) and checks they are ready; admin_mu_ must be held.
  core::Status EnsureLoaded(const std::string& model, const std::vector<int64_t>& versions);
  void Record(const std::string& model, const std::string& kind, int64_t version,
              const std::string& reason, const std::string& details_json = "{}") const;
  core::Result<int64_t> ResolveTarget(const RouteState& state, const std::string& target) const;
  core::RolloutConfig PlanFor(const std::string& model) const;
  void ApplyConfig(const std::string& model);
  core::Status StartRolloutLocked(const std::string& model, int64_t version,
                                  const std::string& reason);
  core::Status PromoteLocked(const std::string& model, int64_t version, const std::string& reason,
                             const std::string& details_json);
  void RollbackRolloutLocked(const std::string& model, const std::string& reason,
                             const std::string& details_json);
  void SetStepWeight(RouteState& state, int64_t weight_percent) const;
  // Starts a rollout for models whose plan starts on its own and whose newest ready version is
  // above stable and was never rolled back; admin_mu_ must be held.
  void StartPendingRollouts();
  void Tick();
  void ControllerLoop();
  void Shadow(core::InferRequest copy, int64_t primary_version,
              std::shared_ptr<struct Comparison> comparison);

  Options options_;
  core::Snapshot<Table> table_;
  std::mutex admin_mu_;  // serialises every change of routing state
  mutable std::mutex pins_mu_;
  std::map<std::string, std::set<int64_t>> pending_pins_;  // guarded by pins_mu_
  std::mutex events_mu_;
  std::condition_variable events_cv_;
  std::deque<Event> events_;  // guarded by events_mu_
  bool stopping_ = false;     // guarded by events_mu_
  std::thread controller_;
  // Shared with shadow callbacks, which may outlive the router.
  std::shared_ptr<std::atomic<size_t>> shadow_in_flight_ = std::make_shared<std::atomic<size_t>>(0);
};

}  // namespace slipway::routing
