// `llm-proxy migrate import-reference` through the real binary: a database of the Go llm-proxy (built here from
// its published schema, tests/support/reference/) with projects, tokens in each stored form the reference uses,
// usage and audit rows is imported into a fresh database of ours; the imported tokens then work on the server.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "integration/proxy_fixture.hpp"

namespace llmproxy::itest {
namespace {

using Kind = TestDatabase::Kind;

// ENCRYPTION_KEY of the reference (and, in most cases, of ours): bytes 1..32.
constexpr const char* kKey = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
// "sk-upstream-encrypted-key" encrypted the reference's way (AES-256-GCM, enc:v1: + base64(nonce | ciphertext |
// tag)) under kKey by Python's `cryptography` AESGCM, nonce bytes 100..111: an implementation other than ours.
constexpr const char* kEncryptedApiKey =
    "enc:v1:ZGVmZ2hpamtsbW5vEzReOeHxyAudNsK1fUKbTo3vbK6by5xk2Yft/ngFNolHo/AAMIUEhEI=";
constexpr const char* kPlainApiKey = "sk-upstream-plain-key";
constexpr const char* kDecryptedApiKey = "sk-upstream-encrypted-key";

// Tokens as clients of the reference hold them.
constexpr const char* kPlainToken = "sk-RefPlainToken00000001A";  // stored as is (reference without ENCRYPTION_KEY)
constexpr const char* kPlainTokenSha = "e500885d1a09f3cbf6ce5c5fd429400d1569c1f916178c15b479100af7d7e07b";
constexpr const char* kHashedToken = "sk-RefHashedToken0000002A";  // stored as its SHA-256 hex (with a key)
constexpr const char* kHashedTokenSha = "4235351da16f57f69ee3674eb9dfae6db3046aa1a044b002258ca4e575ede651";
constexpr const char* kRevokedToken = "sk-RefRevokedToken000003A";
constexpr const char* kBcryptToken = "hash:v1:$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

constexpr const char* kProjectPlain = "11111111-1111-4111-8111-111111111111";
constexpr const char* kProjectEncrypted = "22222222-2222-4222-8222-222222222222";
constexpr const char* kProjectInactive = "33333333-3333-4333-8333-333333333333";
constexpr const char* kTokenPlain = "a0000000-0000-4000-8000-000000000001";
constexpr const char* kTokenHashed = "a0000000-0000-4000-8000-000000000002";
constexpr const char* kTokenRevoked = "a0000000-0000-4000-8000-000000000003";
constexpr const char* kTokenBcrypt = "a0000000-0000-4000-8000-000000000004";

/// How many migrations the binary embeds: the up files in migrations/sqlite/ (both drivers have the same versions).
std::string latest_version() {
  int count = 0;
  const std::string dir = std::string(LLMPROXY_SOURCE_DIR) + "/migrations/sqlite";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().ends_with(".up.sql")) ++count;
  }
  return std::to_string(count);
}

/// A database of the Go llm-proxy: its schema, then rows written the way the reference writes them.
class ReferenceDatabase {
 public:
  explicit ReferenceDatabase(Kind kind) : db_(kind) {
    const std::string schema = std::string(LLMPROXY_SOURCE_DIR) + "/tests/support/reference/" +
                               (kind == Kind::sqlite ? "sqlite_schema.sql" : "postgres_schema.sql");
    auto [code, out] = kind == Kind::sqlite
                           ? test::run_command({"sqlite3", "-bail", db_.path(), ".read " + schema})
                           : test::run_command({"psql", db_.url(), "-v", "ON_ERROR_STOP=1", "-qf", schema});
    INFO(out);
    REQUIRE(code == 0);
  }

  /// go-sqlite3 writes Go's `2006-01-02 15:04:05.999999999-07:00`; PostgreSQL TIMESTAMP has no zone.
  std::string ts(const std::string& wall, const std::string& nanos = "123456789") const {
    return "'" + wall + (db_.kind() == Kind::sqlite ? "." + nanos + "+00:00" : "." + nanos.substr(0, 6)) + "'";
  }
  std::string flag(bool v) const { return db_.kind() == Kind::sqlite ? (v ? "1" : "0") : (v ? "TRUE" : "FALSE"); }

  void fill() {
    exec("INSERT INTO projects (id, name, api_key, is_active, created_at, updated_at) VALUES ('" +
         std::string(kProjectPlain) + "', 'ref-plain', '" + kPlainApiKey + "', " + flag(true) + ", " +
         ts("2025-06-01 10:00:00") + ", " + ts("2025-06-01 10:00:00") + ")");
    // CURRENT_TIMESTAMP form: no fraction, no zone.
    exec("INSERT INTO projects (id, name, api_key, is_active, created_at, updated_at) VALUES ('" +
         std::string(kProjectEncrypted) + "', 'ref-encrypted', '" + kEncryptedApiKey + "', " + flag(true) +
         ", '2025-06-02 11:00:00', '2025-06-02 11:00:00')");
    exec("INSERT INTO projects (id, name, api_key, is_active, deactivated_at, created_at, updated_at) VALUES ('" +
         std::string(kProjectInactive) + "', 'ref-inactive', 'sk-x', " + flag(false) + ", " +
         ts("2025-06-05 09:00:00") + ", " + ts("2025-06-01 10:00:00") + ", " + ts("2025-06-05 09:00:00") + ")");
    exec(
        "INSERT INTO tokens (id, token, project_id, expires_at, is_active, request_count, max_requests, created_at, "
        "last_used_at, cache_hit_count) VALUES ('" +
        std::string(kTokenPlain) + "', '" + kPlainToken + "', '" + kProjectPlain + "', NULL, " + flag(true) +
        ", 5, 0, " + ts("2025-06-01 10:05:00") + ", " + ts("2025-06-03 12:00:00", "500000000") + ", 2)");
    exec(
        "INSERT INTO tokens (id, token, project_id, expires_at, is_active, request_count, max_requests, created_at, "
        "cache_hit_count) VALUES ('" +
        std::string(kTokenHashed) + "', '" + kHashedTokenSha + "', '" + kProjectEncrypted + "', " +
        ts("2099-01-01 00:00:00") + ", " + flag(true) + ", 7, 100, " + ts("2025-06-02 11:05:00") + ", 0)");
    exec("INSERT INTO tokens (id, token, project_id, is_active, deactivated_at, request_count, created_at) VALUES ('" +
         std::string(kTokenRevoked) + "', '" + kRevokedToken + "', '" + kProjectPlain + "', " + flag(false) + ", " +
         ts("2025-06-04 08:00:00") + ", 3, " + ts("2025-06-01 10:06:00") + ")");
    exec("INSERT INTO tokens (id, token, project_id, is_active, request_count, created_at) VALUES ('" +
         std::string(kTokenBcrypt) + "', '" + kBcryptToken + "', '" + kProjectPlain + "', " + flag(true) + ", 0, " +
         ts("2025-06-01 10:07:00") + ")");
    exec(
        "INSERT INTO audit_events (id, timestamp, action, actor, project_id, request_id, client_ip, method, path, "
        "outcome, token_id, metadata) VALUES "
        "('e1', " +
        ts("2025-06-01 10:05:00") + ", 'token.create', 'management', '" + kProjectPlain +
        "', 'req-1', '10.0.0.1', 'POST', '/manage/tokens', 'success', '" + kTokenPlain +
        "', '{\"k\":\"v\"}'), "
        "('e2', " +
        ts("2025-06-03 12:00:00") + ", 'proxy_request', 'sk-RefP...001A', '" + kProjectPlain +
        "', 'req-2', '10.0.0.2', 'POST', '/v1/chat/completions', 'denied', NULL, 'not json'), "
        "('e3', " +
        ts("2025-06-01 09:59:00") +
        ", 'project.create', 'management', NULL, NULL, NULL, NULL, NULL, "
        "'failure', NULL, NULL)");
  }

  void exec(const std::string& sql) { db_.query(sql); }
  std::string count(const std::string& table) const { return db_.query("SELECT count(*) FROM " + table); }
  /// What --from takes.
  std::string source() const { return db_.kind() == Kind::sqlite ? db_.path() : db_.url(); }

 private:
  TestDatabase db_;
};

/// The summary line of `table` ("tokens:       3 imported, 0 skipped, 1 failed" -> "3 imported, 0 skipped, 1 failed").
std::string summary(const std::string& output, const std::string& table) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(table + ":", 0) == 0) {
      const auto first = line.find_first_not_of(' ', table.size() + 1);
      return first == std::string::npos ? "" : line.substr(first);
    }
  }
  return "<no line for " + table + ">";
}

/// A timestamp column as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in both dialects.
std::string ts_column(Kind kind, const std::string& column) {
  return kind == Kind::sqlite ? column
                              : "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
}

std::string rows_snapshot(const TestDatabase& db) {
  return db.query(
             "SELECT id, name, api_key, is_active, deactivated_at, created_at, updated_at FROM projects "
             "ORDER BY id") +
         "\n" +
         db.query(
             "SELECT id, token_hash, token_hint, project_id, expires_at, is_active, deactivated_at, "
             "request_count, max_requests, created_at, last_used_at, cache_hit_count FROM tokens ORDER BY id") +
         "\n" + db.query("SELECT id, action, outcome, metadata FROM audit_events ORDER BY id");
}

void check_no_secret(const std::string& output) {
  for (const char* secret : {kPlainToken, kHashedToken, kRevokedToken, kPlainApiKey, kDecryptedApiKey}) {
    CHECK(output.find(secret) == std::string::npos);
  }
}

Environment import_env(const TestDatabase& ours) {
  auto env = base_env(ours.dir());
  ours.apply(env);
  env["ENCRYPTION_KEY"] = kKey;
  return env;
}

/// Import, assert rows, import again (nothing changes), then serve the imported tokens.
/// `kind` is our database's driver; the reference's is `reference_kind` (the same unless told).
void check_import_and_serve(Kind kind, std::optional<Kind> reference_kind = std::nullopt) {
  ReferenceDatabase reference(reference_kind.value_or(kind));
  reference.fill();
  TestDatabase ours(kind);
  auto env = import_env(ours);

  auto [code, out] = run_binary({"migrate", "import-reference", "--from", reference.source()}, env);
  INFO(out);
  REQUIRE(code == 0);
  CHECK(summary(out, "projects") == "3 imported, 0 skipped, 0 failed");
  CHECK(summary(out, "tokens") == "3 imported, 0 skipped, 1 failed");
  CHECK(summary(out, "audit_events") == "3 imported, 0 skipped, 0 failed");
  CHECK_THAT(out, Catch::Matchers::Contains(std::string("token ") + kTokenBcrypt + ": token is stored as a bcrypt"));
  CHECK_THAT(out, Catch::Matchers::Contains("applied " + latest_version() + " migration(s) first"));
  check_no_secret(out);

  CHECK(ours.query("SELECT max(version) FROM schema_migrations") == latest_version());
  CHECK(ours.query("SELECT id, name, CASE WHEN is_active THEN 1 ELSE 0 END, " + ts_column(kind, "created_at") +
                   " FROM projects ORDER BY name") ==
        std::string(kProjectEncrypted) + "|ref-encrypted|1|2025-06-02T11:00:00.000000Z\n" + kProjectInactive +
            "|ref-inactive|0|2025-06-01T10:00:00.123456Z\n" + kProjectPlain +
            "|ref-plain|1|2025-06-01T10:00:00.123456Z");
  CHECK(ours.query("SELECT " + ts_column(kind, "deactivated_at") + " FROM projects WHERE id = '" + kProjectInactive +
                   "'") == "2025-06-05T09:00:00.123456Z");
  // Our ENCRYPTION_KEY is set: both keys are stored encrypted (the upstream call below proves they decrypt).
  CHECK(ours.query("SELECT count(*) FROM projects WHERE api_key LIKE 'enc:v1:%'") == "3");
  CHECK(ours.query("SELECT id, token_hash, token_hint, project_id, CASE WHEN is_active THEN 1 ELSE 0 END, "
                   "request_count, coalesce(max_requests, -1), cache_hit_count, " +
                   ts_column(kind, "last_used_at") + " FROM tokens ORDER BY id") ==
        std::string(kTokenPlain) + "|" + kPlainTokenSha + "|sk-RefP...001A|" + kProjectPlain +
            "|1|5|-1|2|2025-06-03T12:00:00.500000Z\n" + kTokenHashed + "|" + kHashedTokenSha + "|sk-...|" +
            kProjectEncrypted + "|1|7|100|0|\n" + kTokenRevoked +
            "|3fc03018d0ce27475d0458069d7762a6fbf1b6f173a599397f85bfa0cbb9bd89|sk-RefR...003A|" + kProjectPlain +
            "|0|3|-1|0|");
  CHECK(ours.query("SELECT " + ts_column(kind, "deactivated_at") + ", " + ts_column(kind, "expires_at") +
                   " FROM tokens WHERE id IN ('" + kTokenRevoked + "', '" + kTokenHashed + "') ORDER BY id") ==
        "|2099-01-01T00:00:00.123456Z\n2025-06-04T08:00:00.123456Z|");
  CHECK(ours.query("SELECT id, action, actor, outcome, coalesce(project_id, '-'), " + ts_column(kind, "\"timestamp\"") +
                   ", metadata FROM audit_events ORDER BY id") ==
        std::string("e1|token.create|management|success|") + kProjectPlain + "|2025-06-01T10:05:00.123456Z|" +
            (kind == Kind::sqlite ? R"({"k":"v"})" : R"({"k": "v"})") +
            "\n"
            "e2|proxy_request|sk-RefP...001A|denied|" +
            kProjectPlain +
            "|2025-06-03T12:00:00.123456Z|\"not json\"\n"
            "e3|project.create|management|failure|-|2025-06-01T09:59:00.123456Z|");

  // Again: every row is skipped and nothing changes.
  const auto before = rows_snapshot(ours);
  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from", reference.source()}, env);
  INFO(out);
  REQUIRE(code == 0);
  CHECK(summary(out, "projects") == "0 imported, 3 skipped, 0 failed");
  CHECK(summary(out, "tokens") == "0 imported, 3 skipped, 1 failed");
  CHECK(summary(out, "audit_events") == "0 imported, 3 skipped, 0 failed");
  CHECK(rows_snapshot(ours) == before);

  // The server on the imported database: the reference's tokens work, usage goes on from the imported counts.
  test::MockUpstream mock;
  {
    std::ofstream yaml(ours.dir().file("api_providers.yaml"));
    yaml << providers_yaml(mock.base_url());
  }
  env["API_CONFIG_PATH"] = ours.dir().file("api_providers.yaml");
  Proxy proxy(env);
  const auto chat = [&](const std::string& token) {
    return proxy.request("POST", "/v1/chat/completions", R"({"model":"gpt-4o","messages":[]})",
                         {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
  };
  auto r = chat(kPlainToken);
  INFO(r.body);
  CHECK(r.status == 200);
  r = chat(kHashedToken);
  CHECK(r.status == 200);
  r = chat(kRevokedToken);
  CHECK(r.status == 401);
  CHECK(api_error_code(r) == "token_inactive");
  const auto requests = mock.requests();
  REQUIRE(requests.size() == 2);
  CHECK(test::MockUpstream::header(requests[0], "authorization") ==
        std::optional<std::string>("Bearer sk-upstream-plain-key"));
  CHECK(test::MockUpstream::header(requests[1], "authorization") ==
        std::optional<std::string>(std::string("Bearer ") + kDecryptedApiKey));
  REQUIRE(proxy.terminate() == std::optional<int>(0));
  CHECK(ours.query("SELECT request_count FROM tokens ORDER BY id") == "6\n8\n3");
}

/// --dry-run on a database that does not exist / is not migrated, then on a migrated one: counts, no writes.
void check_dry_run(Kind kind) {
  ReferenceDatabase reference(kind);
  reference.fill();
  TestDatabase ours(kind);
  auto env = import_env(ours);
  const auto tables = [&] {
    return ours.query(kind == Kind::sqlite
                          ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                          : "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
  };

  auto [code, out] = run_binary({"migrate", "import-reference", "--from", reference.source(), "--dry-run"}, env);
  INFO(out);
  REQUIRE(code == 0);
  CHECK_THAT(out, Catch::Matchers::Contains("(dry run: nothing written)"));
  CHECK(summary(out, "projects") == "3 to import, 0 to skip, 0 failing");
  CHECK(summary(out, "tokens") == "3 to import, 0 to skip, 1 failing");
  CHECK(summary(out, "audit_events") == "3 to import, 0 to skip, 0 failing");
  if (kind == Kind::sqlite) {
    CHECK_FALSE(std::filesystem::exists(ours.path()));
  } else {
    CHECK(tables() == "0");
  }

  std::tie(code, out) = run_binary({"migrate", "up"}, env);
  REQUIRE(code == 0);
  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from=" + reference.source(), "--dry-run"}, env);
  INFO(out);
  REQUIRE(code == 0);
  CHECK(summary(out, "tokens") == "3 to import, 0 to skip, 1 failing");
  CHECK(ours.query("SELECT (SELECT count(*) FROM projects) + (SELECT count(*) FROM tokens) + "
                   "(SELECT count(*) FROM audit_events)") == "0");
}

/// The server (or `migrate up`) pointed at the reference's own database stops at migration 0001, and says how to
/// move the data over; the reference's rows are untouched.
void check_server_on_reference(Kind kind) {
  ReferenceDatabase reference(kind);
  reference.fill();
  TempDir dir;
  auto env = base_env(dir);
  if (kind == Kind::sqlite) {
    env["DB_DRIVER"] = "sqlite";
    env["DATABASE_PATH"] = reference.source();
  } else {
    env["DB_DRIVER"] = "postgres";
    env["DATABASE_URL"] = reference.source();
  }
  for (const std::vector<std::string>& args : {std::vector<std::string>{"server"}, {"migrate", "up"}}) {
    auto [code, out] = run_binary(args, env);
    INFO(out);
    CHECK(code == 1);
    CHECK_THAT(out, Catch::Matchers::Contains("already exists"));
    CHECK_THAT(out, Catch::Matchers::Contains("llm-proxy migrate import-reference --from <this database>"));
  }
  CHECK(reference.count("tokens") == "4");
}

BOTH_DRIVERS("the server on a database of the Go llm-proxy stops at migration 0001 and names import-reference",
             "[migrate-import]", check_server_on_reference)
BOTH_DRIVERS("import-reference: rows, usage and revocation carried over, idempotent, tokens work on the server",
             "[migrate-import]", check_import_and_serve)
/// More rows than one page (500): every row is read once, in pages, with ids whose order differs from insertion.
void check_paging(Kind kind) {
  ReferenceDatabase reference(kind);
  reference.fill();
  reference.exec(kind == Kind::sqlite
                     ? "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1201) "
                       "INSERT INTO audit_events (id, timestamp, action, actor, outcome) "
                       "SELECT printf('bulk-%d', 1202 - i), '2025-06-01 10:00:00', 'bulk', 'test', 'success' FROM n"
                     : "INSERT INTO audit_events (id, timestamp, action, actor, outcome) "
                       "SELECT 'bulk-' || (1202 - i), '2025-06-01 10:00:00', 'bulk', 'test', 'success' "
                       "FROM generate_series(1, 1201) AS i");
  TestDatabase ours(kind);
  auto env = import_env(ours);
  auto [code, out] = run_binary({"migrate", "import-reference", "--from", reference.source()}, env);
  INFO(out);
  REQUIRE(code == 0);
  CHECK(summary(out, "audit_events") == "1204 imported, 0 skipped, 0 failed");
  CHECK(ours.query("SELECT count(*), count(DISTINCT id) FROM audit_events WHERE action = 'bulk'") == "1201|1201");
}

BOTH_DRIVERS("import-reference reads tables larger than a page completely", "[migrate-import]", check_paging)

TEST_CASE("import-reference from a PostgreSQL reference into SQLite", "[migrate-import][postgres]") {
  check_import_and_serve(Kind::sqlite, Kind::postgres);
}
TEST_CASE("import-reference from an SQLite reference into PostgreSQL", "[migrate-import][postgres]") {
  check_import_and_serve(Kind::postgres, Kind::sqlite);
}
BOTH_DRIVERS("import-reference --dry-run counts what it would do and writes nothing", "[migrate-import]", check_dry_run)

TEST_CASE(
    "import-reference: an encrypted API key without its key fails that project only, and a re-run with "
    "REFERENCE_ENCRYPTION_KEY completes the import",
    "[migrate-import]") {
  ReferenceDatabase reference(Kind::sqlite);
  reference.fill();
  // A Go string may hold any bytes: this user agent is not UTF-8 (0xFF), which fails its row only.
  reference.exec("INSERT INTO audit_events (id, timestamp, action, actor, user_agent, outcome) VALUES ('e4', "
                 "'2025-06-01 10:00:00', 'proxy_request', 'x', CAST(X'4142FF43' AS TEXT), 'success')");
  TestDatabase ours(Kind::sqlite);
  auto env = base_env(ours.dir());
  ours.apply(env);  // no ENCRYPTION_KEY: ours stores API keys in plaintext, like the server would

  auto [code, out] = run_binary({"migrate", "import-reference", "--from", reference.source()}, env);
  INFO(out);
  REQUIRE(code == 0);
  CHECK(summary(out, "projects") == "2 imported, 0 skipped, 1 failed");
  CHECK(summary(out, "tokens") == "2 imported, 0 skipped, 2 failed");
  CHECK(summary(out, "audit_events") == "3 imported, 0 skipped, 1 failed");
  CHECK_THAT(out, Catch::Matchers::Contains("audit event e4: a value is not valid UTF-8 text"));
  CHECK_THAT(out,
             Catch::Matchers::Contains(
                 std::string("project ") + kProjectEncrypted +
                 ": api_key is encrypted (enc:v1:) and neither REFERENCE_ENCRYPTION_KEY nor ENCRYPTION_KEY is set"));
  CHECK_THAT(out, Catch::Matchers::Contains(std::string("token ") + kTokenHashed + ": its project " +
                                            kProjectEncrypted + " was not imported"));

  env["REFERENCE_ENCRYPTION_KEY"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";  // a wrong key
  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from", reference.source()}, env);
  INFO(out);
  REQUIRE(code == 0);
  CHECK_THAT(out, Catch::Matchers::Contains("api_key does not decrypt with REFERENCE_ENCRYPTION_KEY"));
  check_no_secret(out);

  env["REFERENCE_ENCRYPTION_KEY"] = kKey;
  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from", reference.source()}, env);
  INFO(out);
  REQUIRE(code == 0);
  CHECK(summary(out, "projects") == "1 imported, 2 skipped, 0 failed");
  CHECK(summary(out, "tokens") == "1 imported, 2 skipped, 1 failed");
  CHECK(ours.query(std::string("SELECT api_key FROM projects WHERE id = '") + kProjectEncrypted + "'") ==
        kDecryptedApiKey);
}

TEST_CASE("import-reference: usage errors exit 2, a bad source exits 1 and writes nothing", "[migrate-import]") {
  TestDatabase ours(Kind::sqlite);
  auto env = base_env(ours.dir());
  ours.apply(env);

  auto [code, out] = run_binary({"migrate", "import-reference"}, env);
  CHECK(code == 2);
  CHECK_THAT(out, Catch::Matchers::Contains("needs --from"));
  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from", "x", "--bogus"}, env);
  CHECK(code == 2);
  env["REFERENCE_ENCRYPTION_KEY"] = "c2hvcnQ=";
  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from", "x"}, env);
  CHECK(code == 2);
  CHECK_THAT(out, Catch::Matchers::Contains("invalid REFERENCE_ENCRYPTION_KEY"));
  env.erase("REFERENCE_ENCRYPTION_KEY");

  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from", ours.dir().file("missing.db")}, env);
  CHECK(code == 1);
  CHECK_THAT(out, Catch::Matchers::Contains("no such SQLite file"));

  // A file that is not a database; then one of ours (tokens.token_hash) instead of the reference's.
  {
    std::ofstream junk(ours.dir().file("junk.db"));
    junk << "not a database";
  }
  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from", ours.dir().file("junk.db")}, env);
  INFO(out);
  CHECK(code == 1);
  TestDatabase other(Kind::sqlite);
  auto other_env = base_env(other.dir());
  other.apply(other_env);
  REQUIRE(run_binary({"migrate", "up"}, other_env).first == 0);
  std::tie(code, out) = run_binary({"migrate", "import-reference", "--from", other.path()}, env);
  INFO(out);
  CHECK(code == 1);
  CHECK_THAT(out, Catch::Matchers::Contains("not of the Go llm-proxy"));
  CHECK_FALSE(std::filesystem::exists(ours.path()));  // validated before our database is even opened
}

}  // namespace
}  // namespace llmproxy::itest
