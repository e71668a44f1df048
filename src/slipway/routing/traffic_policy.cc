#include "slipway/routing/traffic_policy.h"

#include <algorithm>

namespace slipway::routing {

double KeyPoint(std::string_view key) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : key) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  // splitmix64 finaliser: FNV alone leaves similar keys close together.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

std::vector<WeightedVersion> NormalizeSplit(std::vector<WeightedVersion> split) {
  std::erase_if(split, [](const WeightedVersion& wv) { return wv.weight <= 0; });
  std::sort(split.begin(), split.end(),
            [](const WeightedVersion& a, const WeightedVersion& b) { return a.version > b.version; });
  return split;
}

}  // namespace slipway::routing
