#pragma once
// RowBudget: at most `rows_per_second` rows on average, with bursts of up to one second's worth,
// shared by any number of threads without a lock (the generic cell rate algorithm: one atomic
// "theoretical arrival time" that each admitted row moves on by 1/rate). Drift detection uses
// it so that what it costs stays bounded however busy the model gets.
//
// Admit(rows, now): true when `rows` rows fit the budget at `now` (any steady clock, in ns), and
// then they are counted. A request that does not fit costs one atomic read. A batch larger than
// the whole burst is let in when the budget is full (after a quiet second), so big batches are
// still seen; it is charged in full, and the rows after it wait for that to be earned back.

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace slipway::monitoring {

class RowBudget {
 public:
  // rows_per_second <= 0: no limit, every call is admitted.
  explicit RowBudget(double rows_per_second)
      : ns_per_row_(rows_per_second > 0 ? std::max<int64_t>(1, static_cast<int64_t>(1e9 / rows_per_second)) : 0) {}

  bool Admit(uint64_t rows, int64_t now_ns) {
    if (ns_per_row_ == 0) return true;
    const int64_t cost = static_cast<int64_t>(std::min<uint64_t>(rows, kMaxRows)) * ns_per_row_;
    int64_t due = due_ns_.load(std::memory_order_relaxed);
    while (true) {
      const int64_t from = std::max(due, now_ns);
      // `from - now_ns` is what is owed already; the budget lets at most one second be owed.
      if (due > now_ns && from + cost - now_ns > kBurstNs) return false;
      if (due_ns_.compare_exchange_weak(due, from + cost, std::memory_order_relaxed)) return true;
    }
  }

 private:
  static constexpr int64_t kBurstNs = 1000000000;  // one second's worth of rows at once
  static constexpr uint64_t kMaxRows = uint64_t{1} << 32;  // keeps rows * ns_per_row in range
  const int64_t ns_per_row_;
  // When the rows admitted so far are paid for (a steady-clock time); starts long past.
  std::atomic<int64_t> due_ns_{INT64_MIN / 2};
};

}  // namespace slipway::monitoring
