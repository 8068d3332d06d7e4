#include "llmproxy/db/postgres/raw_connection.hpp"

#include <pqxx/nontransaction>
#include <pqxx/prepared_statement>
#include <pqxx/result>

#include "llmproxy/config/database_url.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/postgres/detail/connection.hpp"
#include "llmproxy/db/postgres/detail/errors.hpp"
#include "llmproxy/db/postgres/detail/params.hpp"

namespace llmproxy::db::postgres {
namespace {

class PostgresRawConnection final : public RawConnection {
 public:
  explicit PostgresRawConnection(std::unique_ptr<pqxx::connection> conn) : conn_(std::move(conn)) {}

  Dialect dialect() const override { return Dialect::postgres; }

  std::vector<Row> query(const std::string& sql, const std::vector<Cell>& params) override {
    try {
      const auto result = run(sql, params);
      std::vector<Row> rows;
      rows.reserve(result.size());
      for (const auto& r : result) {
        Row row;
        row.reserve(r.size());
        for (const auto& field : r) {
          if (field.is_null()) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(field.c_str());
          }
        }
        rows.push_back(std::move(row));
      }
      return rows;
    } catch (...) {
      detail::rethrow_as_db_error("query");
    }
  }

  std::int64_t execute(const std::string& sql, const std::vector<Cell>& params) override {
    try {
      return static_cast<std::int64_t>(run(sql, params).affected_rows());
    } catch (...) {
      detail::rethrow_as_db_error("execute");
    }
  }

  void begin() override { execute("BEGIN", {}); }
  void commit() override { execute("COMMIT", {}); }
  void rollback() noexcept override {
    try {
      execute("ROLLBACK", {});
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing open, or the connection is gone; either way done
    }
  }

  std::vector<std::string> columns(const std::string& table) override {
    std::vector<std::string> out;
    const auto rows = query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = $1 ORDER BY ordinal_position",
        {table});
    for (const auto& row : rows) {
      if (row.at(0)) out.push_back(*row.at(0));
    }
    return out;
  }

 private:
  pqxx::result run(const std::string& sql, const std::vector<Cell>& params) {
    // Transaction control is ours (BEGIN/COMMIT above), so every statement goes through a nontransaction.
    pqxx::nontransaction tx(*conn_);
    if (params.empty()) return tx.exec(sql);
    detail::Params p;
    for (const auto& cell : params) p.text(cell);
    const auto values = p.pointers();
    return tx.exec_params(sql, pqxx::prepare::make_dynamic_params(values));
  }

  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace

std::unique_ptr<RawConnection> open_raw(const std::string& url, Access access,
                                        std::chrono::milliseconds connect_timeout) {
  const std::string target = config::redact_database_url(url);
  const std::string conninfo = detail::with_connection_options(url, connect_timeout);
  if (auto error = detail::conninfo_error(conninfo, target))
    throw Error("invalid database URL " + target + ": " + *error);
  auto conn = detail::connect(conninfo, target);
  try {
    conn->set_variable("TimeZone", "'UTC'");
    conn->set_variable("DateStyle", "'ISO'");
    if (access == Access::read_only) conn->set_variable("default_transaction_read_only", "on");
  } catch (...) {
    detail::rethrow_as_db_error("connect " + target);
  }
  return std::make_unique<PostgresRawConnection>(std::move(conn));
}

}  // namespace llmproxy::db::postgres
