// NextInstanceId: a process-wide number per object, for objects that keep per-thread caches, so
// a cache entry of one object is never taken for another that later lives at the same address.
// Thread safety: safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace slipway::core {

inline uint64_t NextInstanceId() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

}  // namespace slipway::core
