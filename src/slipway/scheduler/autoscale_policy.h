// AutoscalePolicy: when to add or remove a model version's instances, as a pure function of
// what the last measurement window saw. Hysteresis: scaling up needs the queueing delay above
// target for `up_windows` windows in a row; scaling down needs the instances mostly idle for
// `down_windows` windows in a row; every change restarts both counts.
// Thread safety: plain values and a pure function.
#pragma once

#include <cstdint>

namespace slipway::scheduler {

struct AutoscaleSettings {
  int min_instances = 1;
  int max_instances = 1;                 // equal to min: no autoscaling
  double target_queue_delay_us = 2000;   // mean queueing delay that asks for one more instance
  double idle_busy_fraction = 0.3;       // below this busy share of instance time: too many
  int up_windows = 2;
  int down_windows = 10;
};

struct AutoscaleWindow {
  uint64_t requests = 0;                 // answered in the window
  double mean_queue_delay_us = 0;
  double busy_fraction = 0;              // instance time spent executing / instance time
};

struct AutoscaleState {
  int instances = 1;
  int windows_above = 0;
  int windows_idle = 0;
};

// Returns +1, -1 or 0 and updates the hysteresis counts in `state` (not `state.instances`).
int DecideScaling(const AutoscaleSettings& settings, const AutoscaleWindow& window,
                  AutoscaleState& state);

}  // namespace slipway::scheduler
