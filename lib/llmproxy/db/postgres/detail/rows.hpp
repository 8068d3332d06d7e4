#pragma once
/// Result rows -> repository models. Columns are looked up by name, so the SELECT lists in queries.cpp may
/// change order freely.
#include <cstdint>
#include <optional>
#include <string>

#include <pqxx/result>
#include <pqxx/row>

#include "llmproxy/db/models.hpp"
#include "llmproxy/migrate/backend.hpp"

namespace llmproxy::db::postgres::detail {

/// Timestamps arrive in PostgreSQL's text form (`2026-01-02 03:04:05.123456+00`: the session runs with
/// TimeZone UTC and DateStyle ISO). Throws db::Error on anything util::parse_time rejects.
util::TimePoint time_of(const pqxx::field& f);
std::optional<util::TimePoint> optional_time_of(const pqxx::field& f);
std::optional<std::string> optional_text_of(const pqxx::field& f);
bool bool_of(const pqxx::field& f);
std::int64_t integer_of(const pqxx::field& f);

Project project_of(const pqxx::row& r);
Token token_of(const pqxx::row& r);
AuditEvent audit_event_of(const pqxx::row& r);
UsageRow usage_row_of(const pqxx::row& r);
UsageTotals usage_totals_of(const pqxx::row& r);
migrate::AppliedMigration applied_of(const pqxx::row& r);

/// The rows of a paged statement of db/sql.hpp (`total`, then the item columns) as a page.
template <class T>
Page<T> page_of(const pqxx::result& r, T (*decode)(const pqxx::row&)) {
  Page<T> page;
  if (r.empty()) return page;
  page.total_count = integer_of(r[0]["total"]);
  for (const auto& row : r) {
    if (!row["id"].is_null()) page.items.push_back(decode(row));
  }
  return page;
}

}  // namespace llmproxy::db::postgres::detail
