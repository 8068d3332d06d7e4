#include "llmproxy/app/app.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "llmproxy/db/executor.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/migrate/backend.hpp"
#include "llmproxy/ops/ops.hpp"
#include "llmproxy/server/router.hpp"
#include "llmproxy/server/server.hpp"
#include "llmproxy/storage/migrate_command.hpp"
#include "llmproxy/storage/storage.hpp"

#ifndef LLMPROXY_VERSION
#define LLMPROXY_VERSION "0.0.0"
#endif

namespace llmproxy::app {
namespace {

constexpr const char* kUsage =
    "usage: llm-proxy [COMMAND]\n"
    "\n"
    "commands:\n"
    "  server               run the proxy (default)\n"
    "  migrate SUBCOMMAND   manage the database schema (up, down, status, version; see `llm-proxy migrate --help`)\n"
    "  --version            print the version\n"
    "  --help               print this help\n"
    "\n"
    "Configuration comes from environment variables (docs/configuration.md).\n"
    "Exit codes: 0 success, 1 runtime failure, 2 configuration or usage error.\n";

void log_effective_config(const config::Config& cfg) {
  nlohmann::json fields = nlohmann::json::object();
  std::istringstream lines(config::redacted_summary(cfg));
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    fields[line.substr(0, eq)] = line.substr(eq + 1);
  }
  log::write(log::Level::info, "effective_config", fields);
}

}  // namespace

int run_server(const config::Config& cfg) {
  config::require_server_settings(cfg);
  log_effective_config(cfg);
  if (cfg.encryption_key.empty()) {
    log::write(log::Level::warn, "encryption_disabled",
               {{"message", "ENCRYPTION_KEY is not set: project API keys are stored in plaintext"}});
  }

  ops::BootState boot;
  boot.driver = cfg.db.driver == config::DbDriver::postgres ? "postgres" : "sqlite";

  server::Router router;
  ops::register_routes(router, boot);

  server::ServerOptions opts;
  opts.host = cfg.listen_host;
  opts.port = cfg.listen_port;
  opts.io_threads = cfg.io_threads;
  opts.header_read_timeout = cfg.header_read_timeout;
  opts.body_read_timeout = cfg.request_timeout;
  opts.max_request_size = cfg.max_request_size;
  opts.shutdown_timeout = cfg.shutdown_timeout;
  server::Server srv(opts, router.as_handler());

  std::uint16_t port = 0;
  try {
    port = srv.listen();
  } catch (const std::exception& e) {
    log::write(log::Level::error, "listen_failed", {{"error", e.what()}});
    std::cerr << "llm-proxy: " << e.what() << "\n";
    return kExitRuntime;
  }
  log::write(log::Level::info, "listening",
             {{"address", cfg.listen_host.empty() ? std::string("*") : cfg.listen_host}, {"port", port},
              {"io_threads", cfg.io_threads}, {"version", LLMPROXY_VERSION}});

  std::atomic<bool> stopping{false};
  std::atomic<int> exit_code{kExitOk};
  std::unique_ptr<db::Driver> driver;
  std::unique_ptr<db::Executor> executor;

  // Boot runs beside the listener so /live answers and /ready says 503 while the database comes up.
  std::thread boot_thread([&] {
    try {
      driver = storage::open_with_retry(cfg.db, [&] { return stopping.load(); });
      storage::prepare_schema(*driver, cfg.db);
      executor = std::make_unique<db::Executor>(static_cast<std::size_t>(std::clamp(cfg.db.pool_size, 2, 64)));
      boot.database = driver.get();
      boot.executor = executor.get();
      boot.ready.store(true, std::memory_order_release);
      log::write(log::Level::info, "ready", {{"driver", boot.driver}});
    } catch (const std::exception& e) {
      if (!stopping) {
        log::write(log::Level::error, "boot_failed", {{"error", e.what()}});
        std::cerr << "llm-proxy: " << e.what() << "\n";
        exit_code = kExitRuntime;
        stopping = true;
        srv.stop();
      }
    }
  });

  boost::asio::signal_set signals(srv.io(), SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (stopping.exchange(true)) {
          log::write(log::Level::warn, "shutdown_forced", {{"signal", signo}});
          log::flush();
          std::_Exit(kExitRuntime);
        }
        log::write(log::Level::info, "shutdown_requested",
                   {{"signal", signo}, {"grace_seconds", cfg.shutdown_timeout.count() / 1000.0}});
        srv.stop();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  srv.run();
  boot_thread.join();
  if (executor) executor->join();
  log::write(log::Level::info, "shutdown_complete", {{"exit_code", exit_code.load()}});
  log::flush();
  return exit_code;
}

int main(int argc, char** argv, const config::EnvLookup& env) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string command = args.empty() ? "server" : args[0];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return kExitOk;
  }
  if (command == "--version" || command == "version") {
    std::cout << "llm-proxy " << LLMPROXY_VERSION << "\n";
    return kExitOk;
  }
  if (command != "server" && command != "migrate") {
    std::cerr << "llm-proxy: unknown command \"" << command << "\"\n\n" << kUsage;
    return kExitUsage;
  }
  if (command == "server" && args.size() > 1) {
    std::cerr << "llm-proxy: `server` takes no arguments\n\n" << kUsage;
    return kExitUsage;
  }

  config::Config cfg;
  try {
    cfg = config::load(env);
    log::setup(cfg.log_level, cfg.log_format == config::LogFormat::json, cfg.log_file);
  } catch (const std::exception& e) {
    std::cerr << "llm-proxy: configuration error: " << e.what() << "\n";
    return kExitUsage;
  }

  if (command == "migrate") {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    return storage::migrate_command(rest, cfg, std::cout, std::cerr);
  }
  try {
    return run_server(cfg);
  } catch (const config::ConfigError& e) {
    std::cerr << "llm-proxy: configuration error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    log::write(log::Level::error, "fatal", {{"error", e.what()}});
    std::cerr << "llm-proxy: " << e.what() << "\n";
    return kExitRuntime;
  }
}

}  // namespace llmproxy::app
