// Traffic policy: which version a request that names none is sent to. Pure functions of the
// policy and a draw, unit-tested without threads.
//
// A weighted split orders its versions newest first and lays their weights along [0, 1); a
// request's point on that line picks the version. With a routing key the point is a hash of the
// key, so one key always lands on the same version while the weights stay, and raising the newest
// version's weight (a canary's steps) only moves keys onto it, never off it.
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace slipway::routing {

struct WeightedVersion {
  int64_t version = 0;
  int64_t weight = 0;
};

// A point in [0, 1) for a routing key (64-bit FNV-1a, then mixed).
double KeyPoint(std::string_view key);

// Picks the version at `point` in [0, 1) among `split` (versions with weight > 0 that
// `usable(version)` accepts). Returns 0 when none is usable.
template <typename Usable>
int64_t ChooseVersion(const std::vector<WeightedVersion>& split, double point, Usable usable) {
  int64_t total = 0;
  for (const auto& wv : split) {
    if (wv.weight > 0 && usable(wv.version)) total += wv.weight;
  }
  if (total <= 0) return 0;
  double acc = 0;
  const WeightedVersion* last = nullptr;
  for (const auto& wv : split) {  // `split` is kept newest first
    if (wv.weight <= 0 || !usable(wv.version)) continue;
    acc += static_cast<double>(wv.weight) / static_cast<double>(total);
    last = &wv;
    if (point < acc) return wv.version;
  }
  return last->version;
}

// Orders a split newest first and drops zero weights.
std::vector<WeightedVersion> NormalizeSplit(std::vector<WeightedVersion> split);

}  // namespace slipway::routing
