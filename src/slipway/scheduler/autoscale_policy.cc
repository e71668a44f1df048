#include "slipway/scheduler/autoscale_policy.h"

namespace slipway::scheduler {

int DecideScaling(const AutoscaleSettings& settings, const AutoscaleWindow& window,
                  AutoscaleState& state) {
  const bool above = window.requests > 0 && window.mean_queue_delay_us > settings.target_queue_delay_us;
  const bool idle = window.busy_fraction < settings.idle_busy_fraction && !above;
  state.windows_above = above ? state.windows_above + 1 : 0;
  state.windows_idle = idle ? state.windows_idle + 1 : 0;
  if (state.windows_above >= settings.up_windows && state.instances < settings.max_instances) {
    state.windows_above = 0;
    state.windows_idle = 0;
    return +1;
  }
  if (state.windows_idle >= settings.down_windows && state.instances > settings.min_instances) {
    state.windows_above = 0;
    state.windows_idle = 0;
    return -1;
  }
  return 0;
}

}  // namespace slipway::scheduler
