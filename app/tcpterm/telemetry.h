// DPDK telemetry endpoints under /tcpterm/ (dpdk-telemetry.py), next to the
// standard /ethdev/* ones, and rate-limited reporting of rare data-plane
// events through spdlog.
#pragma once
#include "dp/dataplane.h"

namespace tcpterm::app {

void telemetry_register(dp::Dataplane* dp);
void telemetry_unregister();  // before the Dataplane goes away

// Called about once a second by the control loop: logs rare data-plane
// events (flow table full, pools exhausted, TIME-WAIT cap reached, TX
// drops) that happened since the last call.  The data path only counts.
void report_events(dp::Dataplane& dp);

}  // namespace tcpterm::app
