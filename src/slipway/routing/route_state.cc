#include "slipway/routing/route_state.h"

#include <simdjson.h>

#include <algorithm>

#include "slipway/core/json_writer.h"

namespace slipway::routing {

void TrafficMeter::RecordRequest(int64_t version, bool server_error, double latency_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& c = counters_[version];
  ++c.requests;
  if (server_error) ++c.errors;
  auto& l = latencies_[version];
  l.ms[l.next] = static_cast<float>(latency_ms);
  l.next = (l.next + 1) % kWindow;
  l.filled = std::min(l.filled + 1, kWindow);
}

void TrafficMeter::RecordComparison(int64_t primary, int64_t shadow, bool agree, double primary_ms,
                                    double shadow_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& c = comparisons_[{primary, shadow}];
  ++c.comparisons;
  if (agree) ++c.agreements;
  c.primary_ms_sum += primary_ms;
  c.shadow_ms_sum += shadow_ms;
}

VersionCounters TrafficMeter::Counters(int64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counters_.find(version);
  return it == counters_.end() ? VersionCounters{} : it->second;
}

CompareCounters TrafficMeter::Comparison(int64_t primary, int64_t shadow) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = comparisons_.find({primary, shadow});
  return it == comparisons_.end() ? CompareCounters{} : it->second;
}

double TrafficMeter::P99Ms(int64_t version) const {
  std::vector<float> values;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = latencies_.find(version);
    if (it == latencies_.end() || it->second.filled == 0) return 0;
    values.assign(it->second.ms.begin(),
                  it->second.ms.begin() + static_cast<std::ptrdiff_t>(it->second.filled));
  }
  const size_t rank = std::min(values.size() - 1, (values.size() * 99) / 100);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank),
                   values.end());
  return values[rank];
}

std::map<int64_t, VersionCounters> TrafficMeter::AllCounters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

std::map<std::pair<int64_t, int64_t>, CompareCounters> TrafficMeter::AllComparisons() const {
  std::lock_guard<std::mutex> lock(mu_);
  return comparisons_;
}

std::vector<int64_t> RouteState::Pinned() const {
  std::set<int64_t> out;
  for (const auto& [label, v] : labels) out.insert(v);
  for (const auto& wv : split) out.insert(wv.version);
  if (shadow_version > 0) out.insert(shadow_version);
  if (rollout.state == "running") {
    out.insert(rollout.candidate);
    out.insert(rollout.stable);
  }
  out.erase(0);
  return {out.begin(), out.end()};
}

std::string RouteStateToJson(const RouteState& s) {
  core::JsonWriter w;
  w.StartObject();
  w.Key("labels");
  w.StartObject();
  for (const auto& [label, v] : s.labels) {
    w.Key(label);
    w.Int(v);
  }
  w.EndObject();
  w.Key("split");
  w.StartArray();
  for (const auto& wv : s.split) {
    w.StartArray();
    w.Int(wv.version);
    w.Int(wv.weight);
    w.EndArray();
  }
  w.EndArray();
  w.Key("shadow_version");
  w.Int(s.shadow_version);
  w.Key("shadow_fraction");
  w.Double(s.shadow_fraction);
  w.Key("rollout");
  w.StartObject();
  w.Key("state");
  w.String(s.rollout.state);
  w.Key("candidate");
  w.Int(s.rollout.candidate);
  w.Key("stable");
  w.Int(s.rollout.stable);
  w.Key("step");
  w.Uint(s.rollout.step);
  w.Key("reason");
  w.String(s.rollout.reason);
  w.Key("compare_fraction");
  w.Double(s.rollout.compare_fraction);
  w.EndObject();
  w.Key("rejected");
  w.StartArray();
  for (int64_t v : s.rejected) w.Int(v);
  w.EndArray();
  w.Key("config_digest");
  w.String(s.config_digest);
  w.EndObject();
  return w.Take();
}

core::Result<RouteState> RouteStateFromJson(const std::string& json) {
  namespace dom = simdjson::dom;
  dom::parser parser;
  dom::element doc;
  const simdjson::padded_string text(json);
  auto bad = [] { return core::Status::InvalidArgument("stored routing state is malformed"); };
  if (parser.parse(text).get(doc) != simdjson::SUCCESS || !doc.is_object()) return bad();
  RouteState s;
  dom::object labels;
  if (doc["labels"].get_object().get(labels) == simdjson::SUCCESS) {
    for (auto [key, value] : labels) {
      int64_t v = 0;
      if (value.get_int64().get(v) != simdjson::SUCCESS) return bad();
      s.labels[std::string(key)] = v;
    }
  }
  dom::array split;
  if (doc["split"].get_array().get(split) == simdjson::SUCCESS) {
    for (dom::element pair : split) {
      int64_t v = 0;
      int64_t weight = 0;
      if (pair.at(0).get_int64().get(v) != simdjson::SUCCESS ||
          pair.at(1).get_int64().get(weight) != simdjson::SUCCESS) {
        return bad();
      }
      s.split.push_back({v, weight});
    }
    s.split = NormalizeSplit(std::move(s.split));
  }
  int64_t shadow = 0;
  if (doc["shadow_version"].get_int64().get(shadow) == simdjson::SUCCESS) s.shadow_version = shadow;
  double fraction = 0;
  if (doc["shadow_fraction"].get_double().get(fraction) == simdjson::SUCCESS) {
    s.shadow_fraction = fraction;
  }
  dom::object rollout;
  if (doc["rollout"].get_object().get(rollout) == simdjson::SUCCESS) {
    std::string_view text_value;
    if (rollout["state"].get_string().get(text_value) == simdjson::SUCCESS) {
      s.rollout.state = std::string(text_value);
    }
    if (rollout["reason"].get_string().get(text_value) == simdjson::SUCCESS) {
      s.rollout.reason = std::string(text_value);
    }
    int64_t n = 0;
    if (rollout["candidate"].get_int64().get(n) == simdjson::SUCCESS) s.rollout.candidate = n;
    if (rollout["stable"].get_int64().get(n) == simdjson::SUCCESS) s.rollout.stable = n;
    double cf = 0;
    if (rollout["compare_fraction"].get_double().get(cf) == simdjson::SUCCESS) {
      s.rollout.compare_fraction = cf;
    }
    uint64_t step = 0;
    if (rollout["step"].get_uint64().get(step) == simdjson::SUCCESS) s.rollout.step = step;
  }
  dom::array rejected;
  if (doc["rejected"].get_array().get(rejected) == simdjson::SUCCESS) {
    for (dom::element e : rejected) {
      int64_t v = 0;
      if (e.get_int64().get(v) == simdjson::SUCCESS) s.rejected.insert(v);
    }
  }
  std::string_view digest;
  if (doc["config_digest"].get_string().get(digest) == simdjson::SUCCESS) {
    s.config_digest = std::string(digest);
  }
  return s;
}

}  // namespace slipway::routing
