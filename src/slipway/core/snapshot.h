// Snapshot<T>: read-mostly state (routing tables, the model table) published whole: writers build
// a new immutable value and swap it in; readers take a reference-counted pointer to the current
// one and never see a half-made change.
//
// Thread safety: Load and Store are safe from any thread; Load does not block on writers beyond
// the swap itself. Writers that read-modify-write must serialise among themselves.
//
// Built on std::atomic<std::shared_ptr>. Under ThreadSanitizer a mutex stands in for it:
// libstdc++ 12 unlocks the atomic's internal lock bit with a relaxed store after a load, which is
// harmless on the machines we run on but leaves no ordering ThreadSanitizer can see, so every
// concurrent swap would be reported as a race in code that has none.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

namespace slipway::core {

#if defined(__SANITIZE_THREAD__)
#define SLIPWAY_SNAPSHOT_WITH_MUTEX 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLIPWAY_SNAPSHOT_WITH_MUTEX 1
#endif
#endif

template <typename T>
class Snapshot {
 public:
  explicit Snapshot(std::shared_ptr<const T> initial = std::make_shared<const T>())
      : value_(std::move(initial)) {}

#ifdef SLIPWAY_SNAPSHOT_WITH_MUTEX
  std::shared_ptr<const T> Load() const {
    std::lock_guard<std::mutex> lock(mu_);
    return value_;
  }
  void Store(std::shared_ptr<const T> next) {
    std::lock_guard<std::mutex> lock(mu_);
    value_.swap(next);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
#else
  std::shared_ptr<const T> Load() const { return value_.load(); }
  void Store(std::shared_ptr<const T> next) { value_.store(std::move(next)); }

 private:
  std::atomic<std::shared_ptr<const T>> value_;
#endif
};

}  // namespace slipway::core
