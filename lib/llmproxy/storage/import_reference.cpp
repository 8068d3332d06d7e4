#include "llmproxy/storage/import_reference.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "llmproxy/config/database_url.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/raw_connection.hpp"
#include "llmproxy/db/sqlite/raw_connection.hpp"
#include "llmproxy/migrate/runner.hpp"
#include "llmproxy/storage/storage.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/time.hpp"
#include "llmproxy/util/token.hpp"
#ifdef LLMPROXY_WITH_POSTGRES
#include "llmproxy/storage/postgres_module.hpp"
#endif

namespace llmproxy::storage {
namespace {

using db::Cell;
using db::Dialect;
using db::RawConnection;
using db::Row;

/// Rows read from the reference per query (keyset pages by id), so memory does not grow with its size.
constexpr int kPageSize = 500;
/// Failed rows listed one by one; the rest are only counted.
constexpr std::size_t kMaxListedFailures = 100;

/// The reference could not be imported at all (not a reference database, unreadable): exit 1, nothing written.
struct SourceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One row that cannot be imported; `what` says why (never a secret).
struct RowError {
  std::string what;
};

// ---- source ----

bool is_postgres_url(std::string_view from) {
  return from.starts_with("postgres://") || from.starts_with("postgresql://") ||
         from.find("dbname=") != std::string_view::npos || from.find("host=") != std::string_view::npos;
}

std::string describe_source(const std::string& from) {
  return is_postgres_url(from) ? config::redact_database_url(from) : from;
}

std::unique_ptr<RawConnection> open_source(const std::string& from, const config::DatabaseConfig& ours) {
  if (is_postgres_url(from)) {
#ifdef LLMPROXY_WITH_POSTGRES
    return postgres_driver().open_raw(from, db::Access::read_only, ours.connect_timeout);
#else
    throw SourceError("this llm-proxy binary was built without PostgreSQL support (LLMPROXY_WITH_POSTGRES=OFF)");
#endif
  }
  if (!std::filesystem::is_regular_file(from)) throw SourceError(fmt::format("no such SQLite file: {}", from));
  return db::sqlite::open_raw(from, db::Access::read_only, ours.statement_timeout);
}

/// A column the import reads: its name in the reference, and whether the reference must have it (optional ones
/// came with later reference migrations and read as NULL when missing).
struct SourceColumn {
  std::string_view name;
  bool required;
};

constexpr SourceColumn kProjectColumns[] = {
    {"id", true},         {"name", true},      {"api_key", true}, {"is_active", true}, {"deactivated_at", false},
    {"created_at", true}, {"updated_at", true}};
constexpr SourceColumn kTokenColumns[] = {
    {"id", true},         {"token", true},           {"project_id", true},      {"expires_at", false},
    {"is_active", true},  {"deactivated_at", false}, {"request_count", true},   {"max_requests", false},
    {"created_at", true}, {"last_used_at", false},   {"cache_hit_count", false}};
constexpr SourceColumn kAuditColumns[] = {
    {"id", true},          {"timestamp", true},       {"action", true},     {"actor", true},     {"project_id", false},
    {"request_id", false}, {"correlation_id", false}, {"client_ip", false}, {"method", false},   {"path", false},
    {"user_agent", false}, {"outcome", true},         {"reason", false},    {"token_id", false}, {"metadata", false}};

/// Reads one reference table page by page, every column as text, in the order of `wanted`.
class SourceTable {
 public:
  template <std::size_t N>
  SourceTable(RawConnection& conn, std::string table, const SourceColumn (&wanted)[N]) : conn_(conn), table_(table) {
    const auto present = conn.columns(table_);
    if (present.empty())
      throw SourceError(fmt::format("not a database of the Go llm-proxy: it has no table {}", table_));
    const auto has = [&](std::string_view c) { return std::find(present.begin(), present.end(), c) != present.end(); };
    if (table_ == "tokens" && has("token_hash")) {
      throw SourceError("this is a database of this llm-proxy (tokens.token_hash), not of the Go llm-proxy");
    }
    if (table_ == "tokens" && !has("id")) {
      throw SourceError(
          "the reference database predates its migration 00004 (tokens.id is missing): start the Go llm-proxy on "
          "it once so it migrates, then import");
    }
    std::string select;
    for (const auto& c : wanted) {
      std::string name{c.name};
      // Projects of references before their migration 00005 keep the API key in openai_api_key.
      if (table_ == "projects" && name == "api_key" && !has("api_key") && has("openai_api_key"))
        name = "openai_api_key";
      if (!select.empty()) select += ", ";
      if (!has(name)) {
        if (c.required) {
          throw SourceError(fmt::format("not a database of the Go llm-proxy: table {} has no column {}", table_, name));
        }
        select += "NULL";
      } else {
        select += fmt::format("CAST(\"{}\" AS TEXT)", name);
      }
    }
    // Keyset pages on the primary key itself (its index; PostgreSQL binds the cursor as the column's type, text
    // or uuid), so each page costs the same however large the table is.
    first_sql_ = fmt::format("SELECT {} FROM {} ORDER BY id LIMIT {}", select, table_, kPageSize);
    next_sql_ = fmt::format("SELECT {} FROM {} WHERE id > $1 ORDER BY id LIMIT {}", select, table_, kPageSize);
  }

  /// The next page (empty at the end). Column 0 is the id.
  std::vector<Row> next_page() {
    auto rows = after_ ? conn_.query(next_sql_, {after_}) : conn_.query(first_sql_);
    if (!rows.empty()) after_ = rows.back().at(0).value_or("");
    return rows;
  }

 private:
  RawConnection& conn_;
  std::string table_;
  std::string first_sql_;
  std::string next_sql_;
  Cell after_;  // the id of the last row read; nullopt before the first page
};

// ---- value conversions (reference text -> our stored form) ----

/// The reference writes timestamps as Go's `2006-01-02 15:04:05.999999999-07:00` (SQLite), SQLite's
/// CURRENT_TIMESTAMP `2006-01-02 15:04:05`, or PostgreSQL TIMESTAMP text without a zone; a value without a zone
/// is UTC (the reference runs in UTC; its PostgreSQL columns have no time zone).
std::optional<util::TimePoint> parse_reference_time(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (auto t = util::parse_time(text)) return t;
  if (text.size() > 10 && text[10] == ' ') text[10] = 'T';
  if (auto t = util::parse_time(text)) return t;
  return util::parse_time(text + "Z");
}

Cell time_cell(const Cell& value, std::string_view column, bool required) {
  if (!value || value->empty()) {
    if (required) throw RowError{fmt::format("{} is empty", column)};
    return std::nullopt;
  }
  const auto t = parse_reference_time(*value);
  if (!t) throw RowError{fmt::format("{} is not a timestamp", column)};
  return util::format_time(*t);
}

bool boolean_of(const Cell& value, std::string_view column) {
  std::string v = value.value_or("");
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "1" || v == "t" || v == "true") return true;
  if (v == "0" || v == "f" || v == "false") return false;
  throw RowError{fmt::format("{} is not a boolean", column)};
}

std::optional<std::int64_t> integer_of(const Cell& value, std::string_view column) {
  if (!value || value->empty()) return std::nullopt;
  std::int64_t out = 0;
  const auto* end = value->data() + value->size();
  const auto [ptr, ec] = std::from_chars(value->data(), end, out);
  if (ec != std::errc{} || ptr != end) throw RowError{fmt::format("{} is not an integer", column)};
  return out;
}

std::string text_of(const Cell& value, std::string_view column) {
  if (!value || value->empty()) throw RowError{fmt::format("{} is empty", column)};
  return *value;
}

bool is_lower_hex_sha256(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// ---- our database ----

struct Counts {
  std::int64_t imported = 0;
  std::int64_t skipped = 0;
  std::int64_t failed = 0;
};

/// The import into our database: one transaction, existence checks before each insert so a conflict becomes a
/// counted failure instead of an aborted transaction. Without a connection (dry run on a database that does not
/// exist yet or has pending migrations) it only classifies, against what this run has seen.
class Importer {
 public:
  Importer(RawConnection* ours, util::Cipher source_cipher, util::Cipher our_cipher, bool source_key_given)
      : ours_(ours),
        source_cipher_(std::move(source_cipher)),
        our_cipher_(std::move(our_cipher)),
        source_key_given_(source_key_given) {}

  Counts projects, tokens, audit;
  std::vector<std::string> failures;
  std::int64_t hashed_tokens = 0;  // imported from the reference's SHA-256 form (no hint available)

  void project(const Row& r) {
    const std::string id = r.at(0).value_or("");
    try {
      const auto name = text_of(r.at(1), "name");
      if (exists("SELECT 1 FROM projects WHERE id = $1", id)) {
        ++projects.skipped;
        project_ids_.insert(id);
        return;
      }
      if (id.empty()) throw RowError{"id is empty"};
      if (!project_names_.insert(name).second) throw RowError{"another project of the reference has the same name"};
      if (ours_ != nullptr) {
        const auto other = ours_->query("SELECT id FROM projects WHERE name = $1", {name});
        if (!other.empty()) {
          throw RowError{
              fmt::format("its name is already used by project {} in this database", other.at(0).at(0).value_or(""))};
        }
      }
      const std::string api_key = our_cipher_.encrypt(plain_api_key(r.at(2).value_or("")));
      const bool active = boolean_of(r.at(3), "is_active");
      insert(
          "INSERT INTO projects (id, name, api_key, is_active, deactivated_at, created_at, updated_at) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7)",
          {id, name, api_key, bool_cell(active), time_cell(r.at(4), "deactivated_at", false),
           time_cell(r.at(5), "created_at", true), time_cell(r.at(6), "updated_at", true)});
      ++projects.imported;
      project_ids_.insert(id);
    } catch (const RowError& e) {
      fail(projects, "project", id, e.what);
    }
  }

  void token(const Row& r) {
    const std::string id = r.at(0).value_or("");
    try {
      if (exists("SELECT 1 FROM tokens WHERE id = $1", id)) {
        ++tokens.skipped;
        return;
      }
      if (id.empty()) throw RowError{"id is empty"};
      const auto [hash, hint] = our_token_form(r.at(1).value_or(""));
      const auto project_id = text_of(r.at(2), "project_id");
      if (!project_ids_.contains(project_id) && !exists("SELECT 1 FROM projects WHERE id = $1", project_id)) {
        throw RowError{fmt::format("its project {} was not imported", project_id)};
      }
      if (!token_hashes_.insert(hash).second) throw RowError{"another token of the reference has the same secret"};
      if (exists("SELECT 1 FROM tokens WHERE token_hash = $1", hash)) {
        throw RowError{"a token with the same secret but another id exists in this database"};
      }
      const bool active = boolean_of(r.at(4), "is_active");
      // The reference treats max_requests <= 0 as "no limit"; here NULL means that.
      Cell max_requests;
      if (const auto limit = integer_of(r.at(7), "max_requests"); limit && *limit > 0) {
        max_requests = std::to_string(*limit);
      }
      insert(
          "INSERT INTO tokens (id, token_hash, token_hint, project_id, expires_at, is_active, deactivated_at, "
          "request_count, max_requests, created_at, last_used_at, cache_hit_count) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
          {id, hash, hint, project_id, time_cell(r.at(3), "expires_at", false), bool_cell(active),
           time_cell(r.at(5), "deactivated_at", false),
           std::to_string(std::max<std::int64_t>(integer_of(r.at(6), "request_count").value_or(0), 0)), max_requests,
           time_cell(r.at(8), "created_at", true), time_cell(r.at(9), "last_used_at", false),
           std::to_string(std::max<std::int64_t>(integer_of(r.at(10), "cache_hit_count").value_or(0), 0))});
      ++tokens.imported;
      if (hint == kUnknownHint) ++hashed_tokens;
    } catch (const RowError& e) {
      fail(tokens, "token", id, e.what);
    }
  }

  void audit_event(const Row& r) {
    const std::string id = r.at(0).value_or("");
    try {
      if (exists("SELECT 1 FROM audit_events WHERE id = $1", id)) {
        ++audit.skipped;
        return;
      }
      if (id.empty()) throw RowError{"id is empty"};
      const auto outcome = text_of(r.at(11), "outcome");
      if (outcome != "success" && outcome != "failure" && outcome != "denied" && outcome != "error") {
        throw RowError{"outcome is not one of success, failure, denied, error"};
      }
      Row values{id, time_cell(r.at(1), "timestamp", true), text_of(r.at(2), "action"), text_of(r.at(3), "actor")};
      for (int i = 4; i <= 10; ++i) values.push_back(r.at(static_cast<std::size_t>(i)));
      values.push_back(outcome);
      values.push_back(r.at(12));
      values.push_back(r.at(13));
      values.push_back(metadata_cell(r.at(14)));
      insert(
          "INSERT INTO audit_events (id, \"timestamp\", action, actor, project_id, request_id, correlation_id, "
          "client_ip, method, path, user_agent, outcome, reason, token_id, metadata) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
          values);
      ++audit.imported;
    } catch (const RowError& e) {
      fail(audit, "audit event", id, e.what);
    }
  }

  static constexpr std::string_view kUnknownHint = "sk-...";

 private:
  bool exists(const std::string& sql, const std::string& value) {
    return ours_ != nullptr && !ours_->query(sql, {value}).empty();
  }

  void insert(const std::string& sql, const std::vector<Cell>& values) {
    // Checked here so one odd value (a Go string may hold any bytes, e.g. a user agent) fails its row instead of
    // the whole transaction on PostgreSQL.
    for (const auto& v : values) {
      if (v && (v->find('\0') != std::string::npos || !is_valid_utf8(*v))) {
        throw RowError{"a value is not valid UTF-8 text (or holds a NUL byte)"};
      }
    }
    if (ours_ != nullptr) ours_->execute(sql, values);
  }

  Cell bool_cell(bool v) const {
    if (ours_ != nullptr && ours_->dialect() == Dialect::postgres) return v ? "true" : "false";
    return v ? "1" : "0";
  }

  /// The reference stores the token itself (no ENCRYPTION_KEY) or its SHA-256 hex (with one): both give our
  /// token_hash. A bcrypt form (`hash:v1:`, which the reference can produce but does not store for tokens) cannot.
  std::pair<std::string, std::string> our_token_form(const std::string& stored) const {
    if (stored.empty()) throw RowError{"token is empty"};
    if (stored.starts_with("hash:v1:")) {
      throw RowError{
          "token is stored as a bcrypt hash (hash:v1:), from which no lookup hash can be derived; issue "
          "a new token"};
    }
    if (is_lower_hex_sha256(stored)) {
      std::string hash = stored;
      std::transform(hash.begin(), hash.end(), hash.begin(), [](unsigned char c) { return std::tolower(c); });
      return {hash, std::string(kUnknownHint)};
    }
    if (!util::is_well_formed_token(stored)) {
      throw RowError{"token is not in the sk-<22 characters> form this server accepts, so it could never be used"};
    }
    return {util::sha256_hex(stored), util::token_hint(stored)};
  }

  std::string plain_api_key(const std::string& stored) const {
    if (!stored.starts_with("enc:v1:")) return stored;
    if (!source_cipher_.enabled()) {
      throw RowError{"api_key is encrypted (enc:v1:) and neither REFERENCE_ENCRYPTION_KEY nor ENCRYPTION_KEY is set"};
    }
    try {
      return source_cipher_.decrypt(stored);
    } catch (const util::CryptoError&) {
      throw RowError{fmt::format("api_key does not decrypt with {} (another key?)",
                                 source_key_given_ ? "REFERENCE_ENCRYPTION_KEY" : "ENCRYPTION_KEY")};
    }
  }

  /// The reference keeps metadata as TEXT; ours is JSON (JSONB on PostgreSQL). Text that is not JSON is kept as a
  /// JSON string rather than dropped.
  static Cell metadata_cell(const Cell& value) {
    if (!value || value->empty()) return std::nullopt;
    if (nlohmann::json::accept(*value)) return value;
    return nlohmann::json(*value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  void fail(Counts& counts, std::string_view kind, const std::string& id, const std::string& why) {
    ++counts.failed;
    if (failures.size() < kMaxListedFailures)
      failures.push_back(fmt::format("{} {}: {}", kind, id.empty() ? "(no id)" : id, why));
  }

  RawConnection* ours_;
  util::Cipher source_cipher_;
  util::Cipher our_cipher_;
  bool source_key_given_;
  std::unordered_set<std::string> project_ids_;    // imported or already present in this run
  std::unordered_set<std::string> project_names_;  // of the reference's projects seen so far
  std::unordered_set<std::string> token_hashes_;   // of the reference's tokens seen so far
};

std::unique_ptr<RawConnection> open_ours(const config::DatabaseConfig& config) {
  if (config.driver == config::DbDriver::postgres) {
#ifdef LLMPROXY_WITH_POSTGRES
    return postgres_driver().open_raw(config.url, db::Access::read_write, config.connect_timeout);
#else
    throw db::Error("DB_DRIVER=postgres, but this llm-proxy binary was built without PostgreSQL support");
#endif
  }
  return db::sqlite::open_raw(config.path, db::Access::read_write, config.migration_lock_timeout);
}

/// Our database before the import: migrated (or, in a dry run, how many migrations it lacks).
struct Target {
  std::unique_ptr<RawConnection> conn;  // null in a dry run on a database that is not migrated yet
  int migrations = 0;                   // applied now, or (dry run) pending
};

Target prepare_target(const config::DatabaseConfig& config, bool dry_run) {
  Target t;
  if (dry_run && config.driver == config::DbDriver::sqlite && !std::filesystem::exists(config.path)) {
    t.migrations = -1;  // opening would create the file; "all" migrations are pending
    return t;
  }
  auto driver = open_with_retry(config);
  migrate::Runner runner(*driver, driver->files(), config.migration_lock_timeout);
  if (dry_run) {
    std::int64_t applied = 0;
    for (const auto& row : runner.status()) applied += row.applied ? 1 : 0;
    t.migrations = static_cast<int>(static_cast<std::int64_t>(driver->files().size()) - applied);
    if (t.migrations > 0) return t;
  } else {
    t.migrations = apply_pending(runner);
  }
  driver.reset();
  t.conn = open_ours(config);
  return t;
}

void print_counts(std::ostream& out, std::string_view table, const Counts& c, bool dry_run) {
  out << fmt::format("{:<13} {} {}, {} {}, {} {}\n", std::string(table) + ":", c.imported,
                     dry_run ? "to import" : "imported", c.skipped, dry_run ? "to skip" : "skipped", c.failed,
                     dry_run ? "failing" : "failed");
}

}  // namespace

int import_reference(const ImportOptions& options, const config::Config& config, std::ostream& out, std::ostream& err) {
  const std::string source_name = describe_source(options.from);
  std::unique_ptr<RawConnection> source;
  try {
    source = open_source(options.from, config.db);
    // Validate every table before touching our database.
    SourceTable projects(*source, "projects", kProjectColumns);
    SourceTable tokens(*source, "tokens", kTokenColumns);
    SourceTable audit(*source, "audit_events", kAuditColumns);

    Target target = prepare_target(config.db, options.dry_run);
    const bool key_given = !options.reference_key.empty();
    Importer importer(target.conn.get(), util::Cipher(key_given ? options.reference_key : config.encryption_key),
                      util::Cipher(config.encryption_key), key_given);

    if (target.conn) target.conn->begin();
    try {
      for (auto page = projects.next_page(); !page.empty(); page = projects.next_page()) {
        for (const auto& row : page) importer.project(row);
      }
      for (auto page = tokens.next_page(); !page.empty(); page = tokens.next_page()) {
        for (const auto& row : page) importer.token(row);
      }
      for (auto page = audit.next_page(); !page.empty(); page = audit.next_page()) {
        for (const auto& row : page) importer.audit_event(row);
      }
      if (target.conn) {
        if (options.dry_run) {
          target.conn->rollback();
        } else {
          target.conn->commit();
        }
      }
    } catch (...) {
      if (target.conn) target.conn->rollback();
      throw;
    }

    out << fmt::format("import-reference from {} into {}{}\n", source_name, describe_location(config.db),
                       options.dry_run ? " (dry run: nothing written)" : "");
    if (options.dry_run && target.migrations != 0) {
      out << (target.migrations < 0 ? std::string("the database does not exist yet: it would be created and migrated")
                                    : fmt::format("{} migration(s) would be applied first", target.migrations))
          << '\n';
    } else if (!options.dry_run && target.migrations > 0) {
      out << fmt::format("applied {} migration(s) first\n", target.migrations);
    }
    print_counts(out, "projects", importer.projects, options.dry_run);
    print_counts(out, "tokens", importer.tokens, options.dry_run);
    print_counts(out, "audit_events", importer.audit, options.dry_run);
    if (importer.hashed_tokens > 0) {
      out << fmt::format(
          "{} token(s) were stored by the reference as SHA-256 hashes: they work as before, but their hint is "
          "\"{}\"\n",
          importer.hashed_tokens, Importer::kUnknownHint);
    }
    const auto failed = importer.projects.failed + importer.tokens.failed + importer.audit.failed;
    if (failed > 0) {
      out << fmt::format("{} row(s) {} not be imported:\n", failed, options.dry_run ? "would" : "could");
      for (const auto& f : importer.failures) out << "  " << f << '\n';
      if (static_cast<std::size_t>(failed) > importer.failures.size()) {
        out << fmt::format("  ... and {} more\n", static_cast<std::size_t>(failed) - importer.failures.size());
      }
    }
    return 0;
  } catch (const SourceError& e) {
    err << fmt::format("error: cannot import from {}: {}\n", source_name, e.what());
  } catch (const std::exception& e) {
    // db::Error and MigrationError messages carry no password; a URL in them is already redacted.
    err << fmt::format("error: import from {} failed, nothing was imported: {}\n", source_name,
                       config::scrub_database_url_passwords(
                           config::scrub_database_url_passwords(e.what(), options.from), config.db.url));
  }
  return 1;
}

}  // namespace llmproxy::storage
