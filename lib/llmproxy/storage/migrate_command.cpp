#include "llmproxy/storage/migrate_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <optional>
#include <string_view>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/storage/import_reference.hpp"
#include "llmproxy/storage/storage.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::storage {
namespace {

/// Thrown while parsing the arguments; becomes exit code 2.
struct UsageError {
  std::string message;
};

struct Options {
  std::string command;
  std::optional<std::int64_t> to;
  std::optional<std::int64_t> steps;
  bool help = false;
  std::optional<std::string> from;  // import-reference
  bool dry_run = false;             // import-reference
};

std::int64_t parse_number(std::string_view option, std::string_view text, std::int64_t min) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min) {
    throw UsageError{fmt::format("{} expects an integer >= {}, got '{}'", option, min, text)};
  }
  return value;
}

Options parse(const std::vector<std::string>& args) {
  Options o;
  if (args.empty()) throw UsageError{"missing migrate command"};
  o.command = args[0];
  if (o.command == "-h" || o.command == "--help" || o.command == "help") {
    o.help = true;
    return o;
  }
  if (o.command != "up" && o.command != "down" && o.command != "status" && o.command != "version" &&
      o.command != "import-reference") {
    throw UsageError{fmt::format("unknown migrate command '{}'", o.command)};
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (o.command == "import-reference") {
      if (name == "--dry-run" && !value) {
        o.dry_run = true;
        continue;
      }
      if (name != "--from") throw UsageError{fmt::format("unexpected argument '{}' for `migrate {}`", arg, o.command)};
      if (!value) {
        if (i + 1 >= args.size()) throw UsageError{"--from needs a value"};
        value = args[++i];
      }
      if (o.from) throw UsageError{"--from given twice"};
      if (value->empty()) throw UsageError{"--from needs a value"};
      o.from = std::string(*value);
      continue;
    }
    const bool takes_to = o.command == "up" || o.command == "down";
    const bool takes_steps = o.command == "down";
    if (!(name == "--to" && takes_to) && !(name == "--steps" && takes_steps)) {
      throw UsageError{fmt::format("unexpected argument '{}' for `migrate {}`", arg, o.command)};
    }
    if (!value) {
      if (i + 1 >= args.size()) throw UsageError{fmt::format("{} needs a value", name)};
      value = args[++i];
    }
    auto& slot = name == "--to" ? o.to : o.steps;
    if (slot) throw UsageError{fmt::format("{} given twice", name)};
    slot = parse_number(name, *value, name == "--to" ? 0 : 1);
  }
  if (o.to && o.steps) throw UsageError{"use either --steps or --to, not both"};
  if (o.command == "import-reference" && !o.from && !o.help) {
    throw UsageError{"`migrate import-reference` needs --from <PostgreSQL URL or SQLite file of the Go llm-proxy>"};
  }
  return o;
}

void print_status(migrate::Runner& runner, std::ostream& out) {
  const auto rows = runner.status();
  if (rows.empty()) {
    out << "no migrations\n";
    return;
  }
  for (const auto& r : rows) {
    std::string line = fmt::format("{:04}  {}  {}", r.version, r.applied ? "applied" : "pending", r.name);
    if (r.applied_at) line += "  " + util::format_time(*r.applied_at);
    if (!r.known) line += "  (unknown to this binary: applied by a newer llm-proxy)";
    if (r.checksum_mismatch) line += "  (file changed since it was applied: checksum mismatch)";
    out << line << '\n';
  }
}

void print_version(migrate::Runner& runner, std::ostream& out) {
  const auto applied_rows = runner.status();
  std::int64_t current = 0;
  std::size_t pending = 0;
  for (const auto& r : applied_rows) {
    if (r.applied) current = std::max(current, r.version);
    if (!r.applied) ++pending;
  }
  std::string line = std::to_string(current);
  if (current > runner.latest_version()) {
    line += fmt::format(" (newer than this binary, which knows up to {})", runner.latest_version());
  } else if (pending > 0) {
    line += fmt::format(" (pending: {})", pending);
  }
  out << line << '\n';
}

}  // namespace

std::string migrate_usage() {
  return "usage: llm-proxy migrate <command>\n"
         "  up [--to N]                apply pending migrations (only up to version N with --to)\n"
         "  down [--steps N | --to N]  revert the newest N migrations (default 1), or every version above N\n"
         "                             (--to 0 reverts everything)\n"
         "  status                     one line per version: applied/pending, name, applied_at\n"
         "  version                    the current schema version\n"
         "  import-reference --from <postgres URL | SQLite file> [--dry-run]\n"
         "                             migrate, then copy the projects, tokens and audit events of a Go llm-proxy\n"
         "                             database (rows already here are skipped); --dry-run writes nothing.\n"
         "                             Encrypted project API keys are decrypted with REFERENCE_ENCRYPTION_KEY, or\n"
         "                             ENCRYPTION_KEY when that is unset\n"
         "Uses the same DB_DRIVER / DATABASE_* / MIGRATION_LOCK_TIMEOUT variables as the server.\n";
}

int migrate_command(const std::vector<std::string>& args, const config::Config& config, std::ostream& out,
                    std::ostream& err) {
  Options options;
  try {
    options = parse(args);
  } catch (const UsageError& e) {
    err << "error: " << e.message << "\n\n" << migrate_usage();
    return 2;
  }
  if (options.help) {
    out << migrate_usage();
    return 0;
  }
  if (options.command == "import-reference") {
    ImportOptions import;
    import.from = *options.from;
    import.dry_run = options.dry_run;
    // Read here rather than in config::load: only this command uses it. Never echoed.
    if (const char* key = std::getenv("REFERENCE_ENCRYPTION_KEY"); key != nullptr && *key != '\0') {
      const auto raw = util::base64_decode(key);
      if (!raw || raw->size() != 32) {
        err << "error: invalid REFERENCE_ENCRYPTION_KEY: expected the base64 of exactly 32 bytes (as the Go "
               "llm-proxy's ENCRYPTION_KEY)\n";
        return 2;
      }
      import.reference_key = *raw;
    }
    return import_reference(import, config, out, err);
  }
  try {
    auto driver = open_with_retry(config.db);
    migrate::Runner runner(*driver, driver->files(), config.db.migration_lock_timeout);
    if (options.command == "up") {
      const int n = apply_pending(runner, options.to);
      out << fmt::format("applied {} migration{}; database is at version {}\n", n, n == 1 ? "" : "s",
                         runner.current_version());
    } else if (options.command == "down") {
      const auto steps = std::min<std::int64_t>(options.steps.value_or(1), std::numeric_limits<int>::max());
      const int n = options.to ? runner.down_to(*options.to) : runner.down_steps(static_cast<int>(steps));
      out << fmt::format("reverted {} migration{}; database is at version {}\n", n, n == 1 ? "" : "s",
                         runner.current_version());
    } else if (options.command == "status") {
      print_status(runner, out);
    } else {
      print_version(runner, out);
    }
    return 0;
  } catch (const std::exception& e) {
    // db::Error, migrate::MigrationError and anything unexpected: the message already says what to do.
    err << "error: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace llmproxy::storage
