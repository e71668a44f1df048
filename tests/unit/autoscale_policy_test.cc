#include "slipway/scheduler/autoscale_policy.h"

#include <gtest/gtest.h>

namespace slipway::scheduler {
namespace {

AutoscaleSettings Settings() {
  AutoscaleSettings s;
  s.min_instances = 1;
  s.max_instances = 3;
  s.target_queue_delay_us = 1000;
  s.idle_busy_fraction = 0.3;
  s.up_windows = 2;
  s.down_windows = 3;
  return s;
}

AutoscaleWindow Window(double delay_us, double busy, uint64_t requests = 100) {
  return {requests, delay_us, busy};
}

TEST(AutoscalePolicy, ScalesUpOnlyAfterSustainedQueueing) {
  AutoscaleState st;
  EXPECT_EQ(DecideScaling(Settings(), Window(5000, 1.0), st), 0);
  EXPECT_EQ(DecideScaling(Settings(), Window(10, 1.0), st), 0);  // the streak is broken
  EXPECT_EQ(DecideScaling(Settings(), Window(5000, 1.0), st), 0);
  EXPECT_EQ(DecideScaling(Settings(), Window(5000, 1.0), st), +1);
  st.instances = 3;
  EXPECT_EQ(DecideScaling(Settings(), Window(5000, 1.0), st), 0);
  EXPECT_EQ(DecideScaling(Settings(), Window(5000, 1.0), st), 0);  // at max
}

TEST(AutoscalePolicy, ScalesDownAfterSustainedIdlenessButNotBelowMin) {
  AutoscaleState st;
  st.instances = 2;
  EXPECT_EQ(DecideScaling(Settings(), Window(0, 0.1, 0), st), 0);
  EXPECT_EQ(DecideScaling(Settings(), Window(0, 0.1, 0), st), 0);
  EXPECT_EQ(DecideScaling(Settings(), Window(0, 0.1, 0), st), -1);
  st.instances = 1;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(DecideScaling(Settings(), Window(0, 0.0, 0), st), 0);
}

TEST(AutoscalePolicy, BusyButNotQueueingHoldsSteady) {
  AutoscaleState st;
  st.instances = 2;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(DecideScaling(Settings(), Window(200, 0.8), st), 0);
}

}  // namespace
}  // namespace slipway::scheduler
