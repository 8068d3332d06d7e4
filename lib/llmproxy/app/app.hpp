#pragma once
/// The command line of llm-proxy: `server` (default), `migrate ...`, `--version`, `--help`.
#include "llmproxy/config/config.hpp"

namespace llmproxy::app {

/// Exit codes (SPEC §8).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

/// Parses the command line, loads the configuration from `env` and runs the command. Returns the exit code.
/// Called once from main() on the main thread.
int main(int argc, char** argv, const config::EnvLookup& env);

/// `llm-proxy server`: listens, boots the database (connect with retry, migrate), serves until SIGTERM/SIGINT,
/// drains, flushes, returns the exit code.
int run_server(const config::Config& config);

/// `llm-proxy healthcheck`: GET /health on the local listener (LISTEN_ADDR); exit 0 if it answers 200, else 1.
/// For container HEALTHCHECKs without curl in the image.
int healthcheck(const config::Config& config);

}  // namespace llmproxy::app
