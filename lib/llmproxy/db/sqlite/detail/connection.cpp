#include "llmproxy/db/sqlite/detail/connection.hpp"

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/db/sqlite/detail/placeholders.hpp"

namespace llmproxy::db::sqlite::detail {

namespace {

int to_busy_ms(std::chrono::milliseconds timeout) {
  return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(timeout.count(), 0, INT_MAX));
}

int open_flags(Role role) {
  // NOMUTEX: each connection is used by one thread at a time under our own locks, so SQLite's per-connection
  // mutex would only add cost.
  return role == Role::writer ? SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX
                              : SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX;
}

}  // namespace

Connection::Connection(const std::string& path, Role role, std::chrono::milliseconds busy_timeout)
    : db_(std::make_unique<SQLite::Database>(path, open_flags(role), to_busy_ms(busy_timeout))),
      busy_timeout_(busy_timeout) {
  // journal_mode is a property of the file: the writer switches it, and on a reader the same PRAGMA only reports
  // the current mode (a ":memory:" database answers "memory", which is fine).
  db_->exec("PRAGMA journal_mode = WAL");
  db_->exec("PRAGMA synchronous = NORMAL");
  db_->exec("PRAGMA foreign_keys = ON");
}

Connection::~Connection() {
  statements_.clear();  // finalize before the connection closes
}

SQLite::Statement& Connection::cached(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it == statements_.end()) {
    auto statement = std::make_unique<SQLite::Statement>(*db_, rewrite_placeholders(sql));
    it = statements_.emplace(std::string(sql), std::move(statement)).first;
  }
  it->second->tryReset();
  it->second->clearBindings();
  return *it->second;
}

void Connection::exec(const std::string& sql) { db_->exec(sql); }

void Connection::set_busy_timeout(std::chrono::milliseconds timeout) {
  db_->setBusyTimeout(to_busy_ms(timeout));
  busy_timeout_ = timeout;
}

Query::Query(Connection& conn, std::string_view sql) : statement_(&conn.cached(sql)) {}

Query::Query(std::unique_ptr<SQLite::Statement> owned) : owned_(std::move(owned)), statement_(owned_.get()) {}

Query Query::uncached(Connection& conn, std::string_view sql) {
  return Query(std::make_unique<SQLite::Statement>(conn.db(), rewrite_placeholders(sql)));
}

Query::Query(Query&& other) noexcept
    : owned_(std::move(other.owned_)), statement_(std::exchange(other.statement_, nullptr)) {}

Query::~Query() {
  // A statement left mid-result would keep its read transaction (and, on the writer, an autocommit write) open.
  if (statement_ != nullptr) statement_->tryReset();
}

Query& Query::bind(int index, std::nullptr_t) {
  statement_->bind(index);
  return *this;
}

Query& Query::bind(int index, std::int64_t value) {
  statement_->bind(index, static_cast<int64_t>(value));
  return *this;
}

Query& Query::bind(int index, const std::string& value) {
  statement_->bind(index, value);
  return *this;
}

Query& Query::bind(int index, const Value& value) {
  std::visit([&](const auto& v) { bind(index, v); }, value);
  return *this;
}

bool Query::next() { return statement_->executeStep(); }

std::int64_t Query::run() {
  while (statement_->executeStep()) {
  }
  return statement_->getChanges();
}

bool Query::is_null(int column) const { return statement_->isColumnNull(column); }

std::string Query::text(int column) const { return statement_->getColumn(column).getString(); }

std::optional<std::string> Query::opt_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

std::int64_t Query::int64(int column) const { return statement_->getColumn(column).getInt64(); }

std::optional<std::int64_t> Query::opt_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column);
}

util::TimePoint Query::time(int column) const {
  const auto parsed = util::parse_time(statement_->getColumn(column).getText());
  if (!parsed) {
    throw Error(std::string("sqlite: stored value of column ") + statement_->getColumnName(column) +
                " is not a valid timestamp");
  }
  return *parsed;
}

std::optional<util::TimePoint> Query::opt_time(int column) const {
  if (is_null(column)) return std::nullopt;
  return time(column);
}

}  // namespace llmproxy::db::sqlite::detail
