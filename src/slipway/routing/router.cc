#include "slipway/routing/router.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "slipway/core/json_writer.h"
#include "slipway/core/thread_name.h"
#include "slipway/routing/output_compare.h"
#include "slipway/routing/rollout_policy.h"

namespace slipway::routing {

using core::Result;
using core::Status;

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Uniform() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool IsServerError(const Status& st) {
  return st.code() == core::StatusCode::kInternal ||
         st.code() == core::StatusCode::kDeadlineExceeded;
}

// The routing key of a request: the `routing_key` parameter (frontends also put the
// `Slipway-Routing-Key` header / gRPC metadata there).
std::string RoutingKey(const core::InferRequest& request) {
  auto it = request.parameters.find("routing_key");
  if (it == request.parameters.end()) return "";
  if (const auto* s = std::get_if<std::string>(&it->second)) return *s;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return std::to_string(*i);
  if (const auto* u = std::get_if<uint64_t>(&it->second)) return std::to_string(*u);
  return "";
}

core::InferRequest DeepCopy(const core::InferRequest& request) {
  core::InferRequest copy;
  copy.model_name = request.model_name;
  copy.model_version = request.model_version;
  copy.id = request.id;
  copy.parameters = request.parameters;
  copy.outputs = request.outputs;
  for (const core::Tensor& t : request.inputs) {
    copy.inputs.push_back(core::Tensor::Owned(t.name(), t.type(), t.shape(), std::string(t.bytes())));
  }
  return copy;
}

// The highest ready version a model's metadata lists, leaving out `except`; 0 when none.
int64_t HighestVersion(const serving::ModelMetadata& md, int64_t except = 0) {
  int64_t highest = 0;
  for (const auto& v : md.versions) {
    const int64_t n = std::stoll(v);  // the metadata lists std::to_string of version numbers
    if (n != except) highest = std::max(highest, n);
  }
  return highest;
}

std::string Digest(const core::RoutingConfig& r) {
  std::string d;
  for (const auto& [label, v] : r.labels) d += "l:" + label + "=" + std::to_string(v) + ";";
  for (const auto& [target, w] : r.traffic.split) d += "s:" + target + "=" + std::to_string(w) + ";";
  d += "h:" + r.traffic.shadow_target + "=" + std::to_string(r.traffic.shadow_fraction);
  return d;
}

}  // namespace

// Both answers of a compared request; whichever arrives second compares them.
struct Comparison {
  std::mutex mu;
  int64_t primary_version = 0;
  int64_t shadow_version = 0;
  bool have_primary = false;
  bool have_shadow = false;
  bool failed = false;
  std::vector<core::Tensor> primary;
  std::vector<core::Tensor> shadow;
  double primary_ms = 0;
  double shadow_ms = 0;
  std::shared_ptr<TrafficMeter> meter;

  void Arrive(bool is_primary, const Result<core::InferResponse>& result, double ms) {
    std::lock_guard<std::mutex> lock(mu);
    if (!result.ok()) failed = true;
    if (is_primary) {
      have_primary = true;
      primary_ms = ms;
      if (result.ok()) primary = result->outputs;
    } else {
      have_shadow = true;
      shadow_ms = ms;
      if (result.ok()) shadow = result->outputs;
    }
    // Without a split or label the primary may have been the shadow's version itself.
    if (have_primary && have_shadow && !failed && primary_version != shadow_version) {
      meter->RecordComparison(primary_version, shadow_version, OutputsAgree(primary, shadow),
                              primary_ms, shadow_ms);
    }
  }
};

Result<std::unique_ptr<Router>> Router::Create(Options options) {
  if (options.inner == nullptr || options.admin == nullptr) {
    return Status::InvalidArgument("Router needs an inner InferenceService and an AdminService");
  }
  return std::unique_ptr<Router>(new Router(options));
}

// Holds admin_mu_; on leaving, drops the versions pinned while loading (the published state
// pins what it needs from then on).
class Router::AdminSection {
 public:
  explicit AdminSection(Router* router) : router_(router), lock_(router->admin_mu_) {}
  ~AdminSection() {
    std::lock_guard<std::mutex> lock(router_->pins_mu_);
    router_->pending_pins_.clear();
  }

 private:
  Router* router_;
  std::lock_guard<std::mutex> lock_;
};

Router::~Router() { Stop(); }

void Router::Stop() {
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    stopping_ = true;
  }
  events_cv_.notify_all();
  if (controller_.joinable()) controller_.join();
}

std::shared_ptr<const RouteState> Router::Find(const std::string& model) const {
  auto table = table_.Load();
  auto it = table->find(model);
  return it == table->end() ? nullptr : it->second;
}

bool Router::Ready(const std::string& model, int64_t version) const {
  auto ready = inner_->ModelReady(model, version);
  return ready.ok() && *ready;
}

int64_t Router::DefaultVersion(const std::string& model) const {
  auto state = Find(model);
  if (state == nullptr) return 0;
  auto it = state->labels.find("stable");
  if (it != state->labels.end() && Ready(model, it->second)) return it->second;
  return 0;
}

std::vector<int64_t> Router::PinnedVersions(const std::string& model) const {
  std::vector<int64_t> out;
  if (auto state = Find(model)) out = state->Pinned();
  std::lock_guard<std::mutex> lock(pins_mu_);
  auto it = pending_pins_.find(model);
  if (it != pending_pins_.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  return out;
}

void Router::Record(const std::string& model, const std::string& kind, int64_t version,
                    const std::string& reason, const std::string& details_json) const {
  spdlog::info("deployment: model '{}' {} version {}: {}", model, kind, version, reason);
  if (options_.store == nullptr) return;
  DeploymentEvent event;
  event.model = model;
  event.kind = kind;
  event.version = version;
  event.reason = reason;
  event.details_json = details_json;
  if (auto st = options_.store->Record(std::move(event)); !st.ok()) {
    spdlog::error("cannot record deployment event: {}", st.status().message());
  }
}

void Router::OnModelEvent(const std::string& model, const std::string& kind, int64_t version,
                          const std::string& reason) {
  Record(model, kind, version, reason.empty() ? "version is ready" : reason);
  std::lock_guard<std::mutex> lock(events_mu_);
  events_.push_back({model, kind, version});
  events_cv_.notify_all();
}

void Router::Publish(const std::string& model, RouteState state) {
  const std::string json = RouteStateToJson(state);
  auto next = std::make_shared<Table>(*table_.Load());
  (*next)[model] = std::make_shared<const RouteState>(std::move(state));
  table_.Store(std::move(next));
  if (options_.store != nullptr) {
    if (auto st = options_.store->SaveState(model, json); !st.ok()) {
      spdlog::error("cannot persist routing state of model '{}': {}", model, st.message());
    }
  }
}

void Router::Restore() {
  if (options_.store == nullptr) return;
  auto states = options_.store->LoadStates();
  if (!states.ok()) {
    spdlog::error("cannot read persisted routing state: {}", states.status().message());
    return;
  }
  auto next = std::make_shared<Table>();
  for (const auto& [model, json] : *states) {
    auto state = RouteStateFromJson(json);
    if (!state.ok()) {
      spdlog::error("model '{}': {}; starting from its config", model, state.status().message());
      continue;
    }
    state->rollout.step_started_ms = NowMs();
    (*next)[model] = std::make_shared<const RouteState>(std::move(state).value());
    spdlog::info("model '{}': restored labels, traffic and rollout state", model);
  }
  table_.Store(std::move(next));
}

void Router::Start() {
  if (auto* core = options_.admin) {
    AdminSection section(this);
    for (const auto& entry : core->RepositoryIndex(true)) {
      if (entry.state == "READY") ApplyConfig(entry.name);
    }
  }
  controller_ = std::thread([this] {
    core::NameThisThread("slipway-rollout");
    ControllerLoop();
  });
}

Status Router::EnsureLoaded(const std::string& model, const std::vector<int64_t>& versions) {
  // The pins stay until the admin section ends, after the new state is published, so no reload
  // in between can retire these versions.
  {
    std::lock_guard<std::mutex> lock(pins_mu_);
    pending_pins_[model].insert(versions.begin(), versions.end());
  }
  // Ready means in the serving set: a version in its retirement grace still answers by number
  // but must be brought back.
  bool all_ready = true;
  auto md = inner_->GetModelMetadata(model, 0);
  for (int64_t v : versions) {
    const bool serving = md.ok() && std::find(md->versions.begin(), md->versions.end(),
                                              std::to_string(v)) != md->versions.end();
    all_ready = all_ready && serving;
  }
  if (all_ready) return Status::Ok();
  Status st = options_.admin->RefreshModel(model);
  for (int64_t v : versions) {
    if (!Ready(model, v)) {
      auto ready = inner_->ModelReady(model, v);
      if (!ready.ok()) return ready.status();
      return Status::Unavailable("model '" + model + "' version " + std::to_string(v) +
                                 " is not ready" + (st.ok() ? "" : ": " + st.message()));
    }
  }
  return Status::Ok();
}

Result<int64_t> Router::ResolveTarget(const RouteState& state, const std::string& target) const {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(target.data(), target.data() + target.size(), v);
  if (ec == std::errc() && ptr == target.data() + target.size()) {
    if (v < 1) return Status::InvalidArgument("version must be >= 1, got " + target);
    return v;
  }
  auto it = state.labels.find(target);
  if (it == state.labels.end()) return Status::NotFound("no label '" + target + "'");
  return it->second;
}

core::RolloutConfig Router::PlanFor(const std::string& model) const {
  core::RolloutConfig plan;
  auto config = inner_->GetModelConfig(model, 0);
  if (config.ok() && config->routing.rollout.enabled) return config->routing.rollout;
  plan.enabled = true;
  plan.steps = {{10, 100, 0}, {50, 100, 0}, {100, 100, 0}};
  return plan;
}

void Router::ApplyConfig(const std::string& model) {
  auto config = inner_->GetModelConfig(model, 0);
  if (!config.ok()) return;
  const core::RoutingConfig& routing = config->routing;
  auto current = Find(model);
  // Models without routing stay off the routed path entirely.
  if (current == nullptr && routing.empty()) return;
  RouteState state = current ? *current : RouteState{};
  const std::string digest = Digest(routing);
  bool changed = false;
  if (digest != state.config_digest) {
    state.config_digest = digest;
    changed = true;
    for (const auto& [label, v] : routing.labels) state.labels[label] = v;
    if (!routing.traffic.split.empty()) {
      std::vector<WeightedVersion> split;
      for (const auto& [target, w] : routing.traffic.split) {
        auto v = ResolveTarget(state, target);
        if (!v.ok()) {
          spdlog::error("model '{}' traffic split: {}", model, v.status().message());
          continue;
        }
        split.push_back({*v, w});
      }
      state.split = NormalizeSplit(std::move(split));
    }
    if (!routing.traffic.shadow_target.empty()) {
      auto v = ResolveTarget(state, routing.traffic.shadow_target);
      if (v.ok()) {
        state.shadow_version = *v;
        state.shadow_fraction = routing.traffic.shadow_fraction;
      }
    }
  }
  // A model with a rollout plan needs a stable version to roll out against.
  if (routing.rollout.enabled && state.labels.count("stable") == 0) {
    auto md = inner_->GetModelMetadata(model, 0);
    if (md.ok() && !md->versions.empty()) {
      const int64_t highest = HighestVersion(*md);
      state.labels["stable"] = highest;
      changed = true;
      Record(model, "label", highest, "stable set to the highest ready version (first load)");
    }
  }
  if (changed) {
    Publish(model, std::move(state));
    (void)EnsureLoaded(model, Find(model)->Pinned());
  }
}

// ---- request path ----------------------------------------------------------------------------

void Router::Infer(core::InferRequest request, core::InferCallback done) {
  auto state = Find(request.model_name);
  if (state == nullptr) {
    const char* route = request.model_version != 0 ? "named" : "latest";
    return inner_->Infer(std::move(request), [route, done = std::move(done)](
                                                 Result<core::InferResponse> result) {
      if (result.ok()) result->route = route;
      done(std::move(result));
    });
  }
  const std::string& model = request.model_name;
  int64_t chosen = request.model_version;
  const char* route = "named";
  if (chosen == 0) {
    route = "latest";
    if (!state->split.empty()) {
      const std::string key = RoutingKey(request);
      const double point = key.empty() ? Uniform() : KeyPoint(key);
      chosen = ChooseVersion(state->split, point, [&](int64_t v) { return Ready(model, v); });
      if (chosen != 0) route = key.empty() ? "split" : "sticky";
      if (chosen != 0 && state->rollout.state == "running" && chosen == state->rollout.candidate) {
        route = "canary";
      }
    }
    if (chosen == 0) {
      auto it = state->labels.find("stable");
      if (it != state->labels.end() && Ready(model, it->second)) {
        chosen = it->second;
        route = "stable";
      }
    }
  }
  // A shadow copy: the configured shadow, or during a rollout a share of the candidate's
  // requests answered by stable as well, so agreement can be judged.
  int64_t shadow = 0;
  if (state->shadow_version > 0 && state->shadow_version != chosen &&
      Uniform() < state->shadow_fraction) {
    shadow = state->shadow_version;
  } else if (state->rollout.state == "running" && chosen == state->rollout.candidate &&
             chosen != 0 && Uniform() < state->rollout.compare_fraction) {
    shadow = state->rollout.stable;
  }
  request.model_version = chosen;
  std::shared_ptr<Comparison> comparison;
  core::InferRequest copy;
  if (shadow > 0 && shadow_in_flight_->load() < options_.max_shadow_in_flight) {
    comparison = std::make_shared<Comparison>();
    comparison->shadow_version = shadow;
    comparison->meter = state->meter;
    copy = DeepCopy(request);
    copy.model_version = shadow;
    copy.parameters.erase("timeout");
  }
  const auto start = Clock::now();
  std::shared_ptr<TrafficMeter> meter = state->meter;
  inner_->Infer(std::move(request), [meter, start, comparison, chosen, route,
                                     done = std::move(done)](Result<core::InferResponse> result) {
    const double ms = MsSince(start);
    if (result.ok()) {
      result->route = route;
      meter->RecordRequest(result->model_version, false, ms);
      if (comparison) {
        comparison->primary_version = result->model_version;
        comparison->Arrive(true, result, ms);
      }
    } else {
      // Failures count against the version that was chosen, when one was.
      if (chosen > 0) meter->RecordRequest(chosen, IsServerError(result.status()), ms);
      if (comparison) comparison->Arrive(true, result, ms);
    }
    done(std::move(result));
  });
  if (comparison) Shadow(std::move(copy), chosen, std::move(comparison));
}

void Router::Shadow(core::InferRequest copy, int64_t primary_version,
                    std::shared_ptr<Comparison> comparison) {
  ++*shadow_in_flight_;
  const auto start = Clock::now();
  // The callback must not touch the router: a shadow may answer after it is gone.
  inner_->Infer(std::move(copy), [in_flight = shadow_in_flight_, start,
                                  comparison](Result<core::InferResponse> result) {
    comparison->Arrive(false, result, MsSince(start));
    --*in_flight;
  });
  (void)primary_version;
}

// ---- admin -------------------------------------------------------------------------------------

Result<int64_t> Router::ResolveLabel(const std::string& model, const std::string& label) const {
  auto state = Find(model);
  if (state != nullptr) {
    auto it = state->labels.find(label);
    if (it != state->labels.end()) return it->second;
  }
  return Status::NotFound("model '" + model + "' has no label '" + label + "'");
}

Result<serving::RoutingView> Router::GetRouting(const std::string& model) const {
  auto md = inner_->GetModelMetadata(model, 0);
  if (!md.ok() && md.status().code() == core::StatusCode::kNotFound) return md.status();
  serving::RoutingView view;
  view.model = model;
  view.default_version = DefaultVersion(model);
  if (view.default_version == 0 && md.ok()) view.default_version = HighestVersion(*md);
  auto state = Find(model);
  if (state == nullptr) {
    view.rollout.state = "idle";
    return view;
  }
  for (const auto& [label, v] : state->labels) view.labels.emplace_back(label, v);
  for (const auto& wv : state->split) view.split.emplace_back(wv.version, wv.weight);
  view.shadow_version = state->shadow_version;
  view.shadow_fraction = state->shadow_fraction;
  const RolloutRun& r = state->rollout;
  view.rollout = {r.state, r.candidate, r.stable, static_cast<int64_t>(r.step), 0, 0, r.reason};
  const auto plan = PlanFor(model);
  view.rollout.steps = static_cast<int64_t>(plan.steps.size());
  if (r.state == "running" && r.step < plan.steps.size()) {
    view.rollout.weight_percent = plan.steps[r.step].weight_percent;
  }
  for (const auto& [v, c] : state->meter->AllCounters()) {
    view.versions.push_back({v, c.requests, c.errors, state->meter->P99Ms(v)});
  }
  for (const auto& [pair, c] : state->meter->AllComparisons()) {
    const double n = static_cast<double>(std::max<uint64_t>(1, c.comparisons));
    view.comparisons.push_back({pair.first, pair.second, c.comparisons, c.agreements,
                                c.primary_ms_sum / n, c.shadow_ms_sum / n});
  }
  return view;
}

Status Router::SetLabel(const std::string& model, const std::string& label, int64_t version) {
  AdminSection section(this);
  if (version < 1) return Status::InvalidArgument("a label needs a version >= 1");
  RETURN_IF_ERROR(EnsureLoaded(model, {version}));
  auto current = Find(model);
  RouteState state = current ? *current : RouteState{};
  const auto old = state.labels.count(label) ? state.labels[label] : 0;
  if (label == "stable" && old != 0 && old != version) state.labels["previous"] = old;
  state.labels[label] = version;
  Record(model, "label", version,
         fmt::format("label '{}' set to version {}{}", label, version,
                     old ? fmt::format(" (was {})", old) : ""));
  Publish(model, std::move(state));
  (void)options_.admin->RefreshModel(model);  // versions no longer pinned may retire
  return Status::Ok();
}

Status Router::DeleteLabel(const std::string& model, const std::string& label) {
  AdminSection section(this);
  auto current = Find(model);
  if (current == nullptr || current->labels.count(label) == 0) {
    return Status::NotFound("model '" + model + "' has no label '" + label + "'");
  }
  RouteState state = *current;
  const int64_t version = state.labels[label];
  state.labels.erase(label);
  Record(model, "label", version, "label '" + label + "' removed");
  Publish(model, std::move(state));
  (void)options_.admin->RefreshModel(model);
  return Status::Ok();
}

Status Router::SetTraffic(const std::string& model, const serving::TrafficChange& change) {
  AdminSection section(this);
  auto current = Find(model);
  RouteState state = current ? *current : RouteState{};
  if (state.rollout.state == "running") {
    return Status::FailedPrecondition("model '" + model + "' has a rollout running (candidate " +
                                      std::to_string(state.rollout.candidate) +
                                      "); promote or roll it back first");
  }
  std::vector<WeightedVersion> split;
  int64_t total = 0;
  std::vector<int64_t> needed;
  for (const auto& [target, weight] : change.split) {
    ASSIGN_OR_RETURN(int64_t v, ResolveTarget(state, target));
    if (weight < 0) return Status::InvalidArgument("traffic weights must be >= 0");
    total += weight;
    split.push_back({v, weight});
    needed.push_back(v);
  }
  if (!change.split.empty() && total <= 0) {
    return Status::InvalidArgument("traffic weights sum to 0");
  }
  int64_t shadow = 0;
  if (!change.shadow_target.empty()) {
    ASSIGN_OR_RETURN(shadow, ResolveTarget(state, change.shadow_target));
    if (change.shadow_fraction <= 0 || change.shadow_fraction > 1) {
      return Status::InvalidArgument("shadow fraction must be within (0, 1]");
    }
    needed.push_back(shadow);
  }
  RETURN_IF_ERROR(EnsureLoaded(model, needed));
  state.split = NormalizeSplit(std::move(split));
  state.shadow_version = shadow;
  state.shadow_fraction = shadow ? change.shadow_fraction : 0;
  std::string desc;
  for (const auto& wv : state.split) {
    desc += fmt::format("{}version {}: {}", desc.empty() ? "" : ", ", wv.version, wv.weight);
  }
  if (shadow) desc += fmt::format("; shadow to version {} at {:.3f}", shadow, change.shadow_fraction);
  Record(model, "traffic", 0, desc.empty() ? "traffic policy cleared" : "traffic set: " + desc);
  Publish(model, std::move(state));
  (void)options_.admin->RefreshModel(model);
  return Status::Ok();
}

Status Router::ClearTraffic(const std::string& model) { return SetTraffic(model, {}); }

void Router::SetStepWeight(RouteState& state, int64_t weight_percent) const {
  const RolloutRun& r = state.rollout;
  std::vector<WeightedVersion> split{{r.candidate, weight_percent}};
  if (weight_percent < 100) split.push_back({r.stable, 100 - weight_percent});
  state.split = NormalizeSplit(std::move(split));
  // Keep the candidate first on the hash line even when its number is lower than stable's.
  if (state.split.size() == 2 && state.split[0].version != r.candidate) {
    std::swap(state.split[0], state.split[1]);
  }
}

Status Router::StartRollout(const std::string& model, int64_t version) {
  AdminSection section(this);
  return StartRolloutLocked(model, version, "started through the admin API");
}

Status Router::StartRolloutLocked(const std::string& model, int64_t version,
                                  const std::string& reason) {
  auto current = Find(model);
  RouteState state = current ? *current : RouteState{};
  if (state.rollout.state == "running") {
    return Status::FailedPrecondition("model '" + model + "' already has a rollout running (candidate " +
                                      std::to_string(state.rollout.candidate) + ")");
  }
  int64_t stable = state.labels.count("stable") ? state.labels["stable"] : 0;
  if (stable == 0) {
    auto md = inner_->GetModelMetadata(model, 0);
    if (!md.ok()) return md.status();
    stable = HighestVersion(*md, version);
  }
  if (stable == 0 || stable == version) {
    return Status::FailedPrecondition("model '" + model + "' has no stable version other than " +
                                      std::to_string(version) + " to roll out against");
  }
  RETURN_IF_ERROR(EnsureLoaded(model, {version, stable}));
  const auto plan = PlanFor(model);
  state.labels["stable"] = stable;
  state.labels["canary"] = version;
  state.rejected.erase(version);
  state.rollout = {};
  state.rollout.state = "running";
  state.rollout.candidate = version;
  state.rollout.stable = stable;
  state.rollout.step = 0;
  state.rollout.step_started_ms = NowMs();
  state.rollout.step_base = state.meter->Counters(version);
  state.rollout.compare_base = state.meter->Comparison(version, stable);
  state.rollout.reason = reason;
  state.rollout.compare_fraction = plan.compare_fraction;
  state.shadow_version = 0;
  state.shadow_fraction = 0;
  SetStepWeight(state, plan.steps.front().weight_percent);
  Record(model, "rollout_start", version,
         fmt::format("canary of version {} against stable {} at {}% ({})", version, stable,
                     plan.steps.front().weight_percent, reason));
  Publish(model, std::move(state));
  return Status::Ok();
}

Status Router::Promote(const std::string& model, int64_t version) {
  AdminSection section(this);
  auto current = Find(model);
  if (version == 0) {
    if (current == nullptr || current->rollout.state != "running") {
      return Status::FailedPrecondition("model '" + model +
                                        "' has no rollout running; name the version to promote");
    }
    version = current->rollout.candidate;
  }
  return PromoteLocked(model, version, "promoted through the admin API", "{}");
}

Status Router::PromoteLocked(const std::string& model, int64_t version, const std::string& reason,
                             const std::string& details_json) {
  RETURN_IF_ERROR(EnsureLoaded(model, {version}));
  auto current = Find(model);
  RouteState state = current ? *current : RouteState{};
  const int64_t old = state.labels.count("stable") ? state.labels["stable"] : 0;
  if (old != 0 && old != version) state.labels["previous"] = old;
  state.labels["stable"] = version;
  state.labels.erase("canary");
  state.split.clear();
  if (state.rollout.state == "running") {
    state.rollout.state = "completed";
    state.rollout.reason = reason;
  }
  Record(model, "promote", version,
         fmt::format("version {} is stable{}: {}", version,
                     old && old != version ? fmt::format(" (was {})", old) : "", reason),
         details_json);
  Publish(model, std::move(state));
  (void)options_.admin->RefreshModel(model);
  return Status::Ok();
}

void Router::RollbackRolloutLocked(const std::string& model, const std::string& reason,
                                   const std::string& details_json) {
  auto current = Find(model);
  if (current == nullptr) return;
  RouteState state = *current;
  const int64_t candidate = state.rollout.candidate;
  state.labels.erase("canary");
  state.split.clear();
  state.rejected.insert(candidate);
  state.rollout.state = "rolled_back";
  state.rollout.reason = reason;
  Record(model, "rollback", candidate,
         fmt::format("canary version {} rolled back: {}", candidate, reason), details_json);
  Publish(model, std::move(state));
}

Status Router::Rollback(const std::string& model) {
  AdminSection section(this);
  auto current = Find(model);
  if (current != nullptr && current->rollout.state == "running") {
    RollbackRolloutLocked(model, "rolled back through the admin API", "{}");
    (void)options_.admin->RefreshModel(model);
    return Status::Ok();
  }
  if (current == nullptr || current->labels.count("previous") == 0) {
    return Status::FailedPrecondition("model '" + model +
                                      "' has no previous stable version to roll back to");
  }
  RouteState state = *current;
  const int64_t previous = state.labels["previous"];
  RETURN_IF_ERROR(EnsureLoaded(model, {previous}));
  const int64_t bad = state.labels.count("stable") ? state.labels["stable"] : 0;
  state.labels["stable"] = previous;
  state.labels.erase("previous");
  state.split.clear();
  if (bad != 0) state.rejected.insert(bad);
  Record(model, "rollback", previous,
         fmt::format("all traffic back to version {} (from {})", previous, bad));
  Publish(model, std::move(state));
  (void)options_.admin->RefreshModel(model);
  return Status::Ok();
}

Result<std::vector<serving::DeploymentEventView>> Router::History(const std::string& model,
                                                                  size_t limit) const {
  std::vector<serving::DeploymentEventView> out;
  if (options_.store == nullptr) return out;
  ASSIGN_OR_RETURN(auto events, options_.store->History(model, limit));
  for (auto& e : events) {
    out.push_back({e.id, e.time_ms, std::move(e.kind), e.version, std::move(e.reason),
                   std::move(e.details_json)});
  }
  return out;
}

// ---- controller --------------------------------------------------------------------------------

void Router::ControllerLoop() {
  std::unique_lock<std::mutex> lock(events_mu_);
  while (!stopping_) {
    events_cv_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms));
    if (stopping_) break;
    std::deque<Event> events;
    events.swap(events_);
    lock.unlock();
    {
      AdminSection section(this);
      for (const Event& e : events) {
        if (e.kind == "load") ApplyConfig(e.model);
      }
      StartPendingRollouts();
      Tick();
    }
    lock.lock();
  }
}

void Router::StartPendingRollouts() {
  auto table = table_.Load();
  for (const auto& [model, state] : *table) {
    if (state->rollout.state == "running") continue;
    auto config = inner_->GetModelConfig(model, 0);
    if (!config.ok() || !config->routing.rollout.enabled || !config->routing.rollout.auto_start) {
      continue;
    }
    const auto stable = state->labels.find("stable");
    if (stable == state->labels.end()) continue;
    auto md = inner_->GetModelMetadata(model, 0);
    if (!md.ok()) continue;
    const int64_t newest = HighestVersion(*md);
    if (newest <= stable->second || state->rejected.count(newest) != 0) continue;
    if (auto st = StartRolloutLocked(model, newest, "new version appeared"); !st.ok()) {
      spdlog::error("model '{}': cannot start a rollout of version {}: {}; it will not be tried "
                    "again on its own", model, newest, st.message());
      auto current = Find(model);
      RouteState next = current ? *current : RouteState{};
      next.rejected.insert(newest);
      Record(model, "rollout_refused", newest, "cannot start a rollout: " + st.message());
      Publish(model, std::move(next));
    }
  }
}

void Router::Tick() {
  auto table = table_.Load();
  for (const auto& [model, state] : *table) {
    const RolloutRun& r = state->rollout;
    if (r.state != "running") continue;
    const auto plan = PlanFor(model);
    if (!Ready(model, r.candidate)) {
      RollbackRolloutLocked(model, "the candidate is no longer ready", "{}");
      continue;
    }
    if (!Ready(model, r.stable)) {
      RollbackRolloutLocked(model,
                            "the stable version " + std::to_string(r.stable) +
                                " is no longer ready, so the candidate cannot be judged against it",
                            "{}");
      continue;
    }
    RolloutObservation seen;
    seen.step = r.step;
    seen.seconds_in_step = static_cast<double>(NowMs() - r.step_started_ms) / 1000.0;
    const VersionCounters c = state->meter->Counters(r.candidate);
    seen.candidate.requests = static_cast<int64_t>(c.requests - r.step_base.requests);
    seen.candidate.errors = static_cast<int64_t>(c.errors - r.step_base.errors);
    seen.candidate.p99_ms = state->meter->P99Ms(r.candidate);
    seen.stable.requests = static_cast<int64_t>(state->meter->Counters(r.stable).requests);
    seen.stable.p99_ms = state->meter->P99Ms(r.stable);
    const CompareCounters cmp = state->meter->Comparison(r.candidate, r.stable);
    seen.comparisons = static_cast<int64_t>(cmp.comparisons - r.compare_base.comparisons);
    seen.agreements = static_cast<int64_t>(cmp.agreements - r.compare_base.agreements);
    if (options_.ground_truth != nullptr) {
      seen.accuracy = options_.ground_truth->WindowAccuracy(
          model, r.candidate, static_cast<uint64_t>(std::max<int64_t>(1, plan.guards.min_requests)));
    }
    const RolloutDecision decision = DecideRollout(plan, seen);
    if (decision.action == RolloutAction::kHold) continue;
    core::JsonWriter w;
    w.StartObject();
    w.Key("step");
    w.Uint(r.step + 1);
    w.Key("candidate_requests");
    w.Int(seen.candidate.requests);
    w.Key("candidate_errors");
    w.Int(seen.candidate.errors);
    w.Key("candidate_p99_ms");
    w.Double(seen.candidate.p99_ms);
    w.Key("stable_p99_ms");
    w.Double(seen.stable.p99_ms);
    w.Key("comparisons");
    w.Int(seen.comparisons);
    w.Key("agreements");
    w.Int(seen.agreements);
    w.EndObject();
    const std::string details = w.Take();
    if (decision.action == RolloutAction::kRollback) {
      RollbackRolloutLocked(model, decision.reason, details);
      (void)options_.admin->RefreshModel(model);
    } else if (decision.action == RolloutAction::kComplete) {
      (void)PromoteLocked(model, r.candidate, "canary analysis passed: " + decision.reason,
                          details);
    } else {
      RouteState next = *state;
      next.rollout.step = r.step + 1;
      next.rollout.step_started_ms = NowMs();
      next.rollout.step_base = c;
      next.rollout.compare_base = cmp;
      next.rollout.reason = decision.reason;
      SetStepWeight(next, plan.steps[next.rollout.step].weight_percent);
      const int64_t candidate = r.candidate;
      const int64_t weight = plan.steps[next.rollout.step].weight_percent;
      Record(model, "rollout_step", candidate,
             fmt::format("canary to {}%: {}", weight, decision.reason), details);
      Publish(model, std::move(next));
    }
  }
}

}  // namespace slipway::routing
