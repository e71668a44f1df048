// BatchQueue policy with explicit (fake) time: batch forming, preferred sizes, delay,
// priorities, timeouts, signatures and capacity.
#include "slipway/scheduler/batch_queue.h"

#include <gtest/gtest.h>

namespace slipway::scheduler {
namespace {

using std::chrono::microseconds;

PendingRequest Item(int64_t rows, const std::string& signature = "s", core::Parameters params = {}) {
  PendingRequest p;
  p.batch = rows;
  p.signature = signature;
  p.request.model_name = "m";
  p.request.parameters = std::move(params);
  p.done = [](core::Result<core::InferResponse>) {};
  return p;
}

BatchingConfig Batching(int64_t max, int64_t delay_us = 0) {
  BatchingConfig c;
  c.enabled = true;
  c.max_batch_size = max;
  c.max_queue_delay_us = delay_us;
  return c;
}

std::vector<int64_t> Rows(const std::vector<PendingRequest>& batch) {
  std::vector<int64_t> rows;
  for (const auto& p : batch) rows.push_back(p.batch);
  return rows;
}

const TimePoint t0{};

TEST(BatchQueue, WithoutDelayTakesEverythingThatFits) {
  BatchQueue q(Batching(8));
  for (int64_t rows : {3, 4, 2, 1}) {
    auto item = Item(rows);
    ASSERT_TRUE(q.Enqueue(item, t0).ok());
  }
  auto d = q.Decide(t0);
  EXPECT_EQ(Rows(d.batch), (std::vector<int64_t>{3, 4, 1}));  // 2 would exceed 8
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(Rows(q.Decide(t0).batch), (std::vector<int64_t>{2}));
  EXPECT_TRUE(q.Decide(t0).batch.empty());
  EXPECT_FALSE(q.Decide(t0).wake_at.has_value());
}

TEST(BatchQueue, DelayWaitsForMoreUntilFullOrDue) {
  BatchQueue q(Batching(4, 100));
  auto a = Item(1);
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  auto d = q.Decide(t0 + microseconds(10));
  EXPECT_TRUE(d.batch.empty());
  ASSERT_TRUE(d.wake_at.has_value());
  EXPECT_EQ(*d.wake_at, t0 + microseconds(100));
  auto b = Item(3);
  ASSERT_TRUE(q.Enqueue(b, t0 + microseconds(20)).ok());
  EXPECT_EQ(Rows(q.Decide(t0 + microseconds(20)).batch), (std::vector<int64_t>{1, 3}));  // full
  auto c = Item(1);
  ASSERT_TRUE(q.Enqueue(c, t0 + microseconds(200)).ok());
  EXPECT_TRUE(q.Decide(t0 + microseconds(250)).batch.empty());
  EXPECT_EQ(Rows(q.Decide(t0 + microseconds(300)).batch), (std::vector<int64_t>{1}));  // due
}

TEST(BatchQueue, PreferredSizeGoesAtOnce) {
  auto config = Batching(16, 1000);
  config.preferred_batch_sizes = {2, 4};
  BatchQueue q(config);
  for (int i = 0; i < 3; ++i) {
    auto item = Item(1);
    ASSERT_TRUE(q.Enqueue(item, t0).ok());
  }
  EXPECT_TRUE(q.Decide(t0).batch.empty());
  auto item = Item(1);
  ASSERT_TRUE(q.Enqueue(item, t0).ok());
  EXPECT_EQ(q.Decide(t0).batch.size(), 4u);
}

TEST(BatchQueue, DifferentSignaturesNeverMerge) {
  BatchQueue q(Batching(8));
  auto a = Item(1, "x");
  auto b = Item(1, "y");
  auto c = Item(1, "x");
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  ASSERT_TRUE(q.Enqueue(b, t0).ok());
  ASSERT_TRUE(q.Enqueue(c, t0).ok());
  auto first = q.Decide(t0).batch;
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].signature, "x");
  EXPECT_EQ(first[1].signature, "x");
  EXPECT_LT(first[0].sequence, first[1].sequence);
  EXPECT_EQ(q.Decide(t0).batch.at(0).signature, "y");
}

TEST(BatchQueue, BatchingOffServesOneRequestAtATimeInOrder) {
  BatchingConfig config;
  config.max_batch_size = 8;  // a batch dimension, but no dynamic batching configured
  BatchQueue q(config);
  for (int i = 0; i < 3; ++i) {
    auto item = Item(2);
    ASSERT_TRUE(q.Enqueue(item, t0).ok());
  }
  for (uint64_t i = 0; i < 3; ++i) {
    auto batch = q.Decide(t0).batch;
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch[0].sequence, i);
  }
}

TEST(BatchQueue, HigherPriorityFirst) {
  auto config = Batching(1);
  config.priority_levels = 3;
  config.default_priority = 3;
  BatchQueue q(config);
  auto low = Item(1);
  auto high = Item(1, "s", {{"priority", uint64_t{1}}});
  auto mid = Item(1, "s", {{"priority", int64_t{2}}});
  ASSERT_TRUE(q.Enqueue(low, t0).ok());
  ASSERT_TRUE(q.Enqueue(high, t0).ok());
  ASSERT_TRUE(q.Enqueue(mid, t0).ok());
  EXPECT_EQ(q.Decide(t0).batch.at(0).priority, 1);
  EXPECT_EQ(q.Decide(t0).batch.at(0).priority, 2);
  EXPECT_EQ(q.Decide(t0).batch.at(0).priority, 3);
  auto bad = Item(1, "s", {{"priority", int64_t{4}}});
  auto st = q.Enqueue(bad, t0);
  EXPECT_EQ(st.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("outside 1..3"), std::string::npos);
  EXPECT_TRUE(static_cast<bool>(bad.done));  // a refused item is not consumed
}

TEST(BatchQueue, TimeoutsExpireFromRequestOrDefault) {
  auto config = Batching(8, 1000);
  config.default_timeout_us = 500;
  BatchQueue q(config);
  auto own = Item(1, "s", {{"timeout", int64_t{50}}});
  auto dflt = Item(1);
  ASSERT_TRUE(q.Enqueue(own, t0).ok());
  ASSERT_TRUE(q.Enqueue(dflt, t0).ok());
  auto d = q.Decide(t0);
  ASSERT_TRUE(d.wake_at.has_value());
  EXPECT_EQ(*d.wake_at, t0 + microseconds(50));  // wakes for the earliest deadline
  EXPECT_TRUE(q.TakeExpired(t0 + microseconds(49)).empty());
  EXPECT_EQ(q.TakeExpired(t0 + microseconds(50)).size(), 1u);
  EXPECT_EQ(q.TakeExpired(t0 + microseconds(500)).size(), 1u);
  EXPECT_EQ(q.size(), 0u);
  auto negative = Item(1, "s", {{"timeout", int64_t{-1}}});
  EXPECT_EQ(q.Enqueue(negative, t0).code(), core::StatusCode::kInvalidArgument);
  auto text = Item(1, "s", {{"timeout", std::string("soon")}});
  EXPECT_EQ(q.Enqueue(text, t0).code(), core::StatusCode::kInvalidArgument);
}

TEST(BatchQueue, FullQueueRefusesAtOnce) {
  auto config = Batching(8);
  config.queue_capacity = 2;
  BatchQueue q(config);
  auto a = Item(1);
  auto b = Item(1);
  auto c = Item(1);
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  ASSERT_TRUE(q.Enqueue(b, t0).ok());
  auto st = q.Enqueue(c, t0);
  EXPECT_EQ(st.code(), core::StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("full"), std::string::npos);
  EXPECT_EQ(q.TakeAll().size(), 2u);
  EXPECT_TRUE(q.Enqueue(c, t0).ok());
}

}  // namespace
}  // namespace slipway::scheduler
