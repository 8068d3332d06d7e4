#pragma once
// Shared by the repository contract files (db_*_contract.cpp): fixed instants, row builders, field-by-field
// comparisons with readable failures, and list helpers. Assertions only; nothing here opens a database.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "contract/db_repository_contract.hpp"
#include "llmproxy/db/database.hpp"

namespace llmproxy::contract {

/// make_fresh() for one section run; REQUIREs a driver.
std::unique_ptr<db::Driver> open_fresh(const MakeFresh& make_fresh);

/// A fixed calendar instant, built without util::parse_time so these tests do not depend on it.
db::TimePoint utc(int y, unsigned mo, unsigned d, int h, int mi, int s, int us);
/// base + offset: every test time is relative to one instant.
db::TimePoint at(std::chrono::microseconds offset = {});

/// Comparable and printable form of a time: exact microsecond count plus a readable form.
std::string show(const std::optional<db::TimePoint>& t);
std::string show(const std::optional<std::int64_t>& v);
std::string show(const std::optional<std::string>& v);

/// Rows with fresh ids and the given fields; the rest default (active, no counts).
db::Project make_project(const std::string& name, db::TimePoint created);
db::Token make_token(const std::string& project_id, db::TimePoint created,
                     std::optional<std::int64_t> max_requests = std::nullopt,
                     std::optional<db::TimePoint> expires_at = std::nullopt);
db::AuditEvent make_event(db::TimePoint ts, const std::string& action = "misc.event",
                          const std::string& outcome = "success");

/// One CHECK per field, so a failure names the field.
void check_same(const db::Project& got, const db::Project& want);
void check_same(const db::Token& got, const db::Token& want);
void check_same(const db::AuditEvent& got, const db::AuditEvent& want);

template <class T>
std::vector<std::string> ids(const std::vector<T>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.id);
  return out;
}

/// Ids ordered like every list of the API: newest first, ties broken by id DESC.
template <class T, class Key>
std::vector<std::string> ids_newest_first(std::vector<T> items, Key key) {
  std::sort(items.begin(), items.end(), [&](const T& a, const T& b) {
    if (key(a) != key(b)) return key(a) > key(b);
    return a.id > b.id;
  });
  return ids(items);
}

/// v[from, from + n), clipped to v.
std::vector<std::string> slice(const std::vector<std::string>& v, std::size_t from, std::size_t n);

/// Short names for audit events so a failing list comparison reads `e3 e1 (total 2)`, not uuids.
using Names = std::map<std::string, std::string>;
Names name_events(const std::vector<std::pair<std::string, const db::AuditEvent*>>& named);
/// A filtered audit list as `name name ... (total N)`.
std::string listed(db::Database& d, db::AuditFilter f, const Names& names);
db::AuditFilter search_for(const std::string& text);

}  // namespace llmproxy::contract
