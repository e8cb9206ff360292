// sessiongrid-demo-app: a small upstream application for sessiongrid-edge
// that speaks its X-Session-* header protocol. Flags, wiring and signals.
#include <cstdio>
#include <string>

#include "common/clock.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "examples/demo-app/demo_app.h"
#include "examples/demo-app/demo_server.h"

int main(int argc, char** argv) {
  sg::demo::DemoAppOptions app_options;
  sg::demo::DemoServerOptions server_options;
  int64_t threads = server_options.threads;
  uint64_t max_body_bytes = server_options.max_body_bytes;

  sg::FlagSet flags("sessiongrid-demo-app",
                    "a demo upstream for sessiongrid-edge (HTML page, assets, "
                    "login, a counter kept in the session)",
                    "SESSIONGRID_DEMO");
  flags.AddString("listen", &server_options.listen,
                  "HOST:PORT to serve HTTP on; port 0 picks a free port.");
  flags.AddString("assets-dir", &app_options.assets_dir,
                  "Optional directory served under /assets/ before the "
                  "built-in files.");
  flags.AddBool("session-on-every-request",
                &app_options.session_on_every_request,
                "Behave like the seed's broken app: ask the edge for a "
                "session (X-Session-Set) and set the app's own connect.sid "
                "on every response, assets and health included. For tests "
                "that prove the edge's classifier keeps those cookie-free.");
  flags.AddInt("threads", &threads, "Event loop threads.");
  flags.AddBytes("max-body", &max_body_bytes,
                 "Largest request body (larger ones get 413).");
  flags.AddDuration("idle-timeout", &server_options.idle_timeout,
                    "Idle keep-alive connections are closed after this.");
  flags.ParseOrExit(argc, argv);
  server_options.threads = static_cast<int>(threads);
  server_options.max_body_bytes = max_body_bytes;
  if (threads != server_options.threads) server_options.threads = 0;
  for (absl::Status s : {app_options.Validate(), server_options.Validate()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", flags.DescribeOptionError(s).c_str());
      return 2;
    }
  }

  sg::BlockStopSignals();  // before any thread starts

  auto app = sg::demo::DemoApp::Create(app_options, sg::Clock::Real());
  if (!app.ok()) {
    sg::LogError("cannot start", {{"error", app.status().ToString()}});
    return 1;
  }
  auto server = sg::demo::DemoServer::Start(server_options, app->get());
  if (!server.ok()) {
    sg::LogError("cannot start", {{"error", server.status().ToString()}});
    return 1;
  }
  sg::LogInfo("listening", {{"address", (*server)->address()}});

  const char* signal_name = sg::WaitForStopSignal();
  sg::LogInfo("signal received, stopping", {{"signal", signal_name}});
  (*server)->Stop();
  sg::LogInfo("stopped");
  return 0;
}
