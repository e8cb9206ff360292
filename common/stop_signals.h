// SIGTERM/SIGINT handling for our binaries: block both before any thread
// starts, then wait for one on the main thread (no async-signal handler).
#pragma once

namespace sg {

// Blocks SIGTERM and SIGINT in the calling thread; threads created later
// inherit the mask. Call first thing in main().
void BlockStopSignals();

// Waits for SIGTERM or SIGINT (blocked by BlockStopSignals) and returns its
// name, "SIGTERM" or "SIGINT".
const char* WaitForStopSignal();

}  // namespace sg
