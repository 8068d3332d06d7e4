#include "contract/repository_contract.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "llmproxy/db/errors.hpp"
#include "llmproxy/util/crypto.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::contract {
namespace {

using namespace std::chrono_literals;
using db::TimePoint;
using std::chrono::microseconds;

/// Fixed calendar instants, built without util::parse_time so these tests do not depend on it.
TimePoint utc(int y, unsigned mo, unsigned d, int h, int mi, int s, int us) {
  const auto day = std::chrono::sys_days{std::chrono::year{y} / mo / d};
  return std::chrono::time_point_cast<microseconds>(day) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(s) + microseconds(us);
}

/// base + offset: every test time is relative to one instant.
TimePoint at(microseconds offset = {}) { return utc(2026, 1, 2, 3, 4, 5, 123456) + offset; }

/// Comparable and printable form of a time: exact microsecond count plus a readable form.
std::string show(const std::optional<TimePoint>& t) {
  if (!t) return "null";
  return std::to_string(t->time_since_epoch().count()) + " (" + util::format_time(*t) + ")";
}
std::string show(const std::optional<std::int64_t>& v) { return v ? std::to_string(*v) : "null"; }
std::string show(const std::optional<std::string>& v) { return v ? "'" + *v + "'" : "null"; }

db::Project make_project(const std::string& name, TimePoint created) {
  db::Project p;
  p.id = util::uuid_v4();
  p.name = name;
  p.api_key = "sk-upstream-" + util::uuid_v4();
  p.created_at = created;
  p.updated_at = created;
  return p;
}

db::Token make_token(const std::string& project_id, TimePoint created,
                     std::optional<std::int64_t> max_requests = std::nullopt,
                     std::optional<TimePoint> expires_at = std::nullopt) {
  db::Token t;
  t.id = util::uuid_v4();
  t.token_hash = util::sha256_hex(t.id);
  t.token_hint = "sk-AbCd...wXyZ";
  t.project_id = project_id;
  t.expires_at = expires_at;
  t.max_requests = max_requests;
  t.created_at = created;
  return t;
}

db::AuditEvent make_event(TimePoint ts, const std::string& action = "misc.event",
                          const std::string& outcome = "success") {
  db::AuditEvent e;
  e.id = util::uuid_v4();
  e.timestamp = ts;
  e.action = action;
  e.actor = "management";
  e.outcome = outcome;
  return e;
}

void check_same(const db::Project& got, const db::Project& want) {
  CHECK(got.id == want.id);
  CHECK(got.name == want.name);
  CHECK(got.api_key == want.api_key);
  CHECK(got.is_active == want.is_active);
  CHECK(show(got.deactivated_at) == show(want.deactivated_at));
  CHECK(show(got.created_at) == show(want.created_at));
  CHECK(show(got.updated_at) == show(want.updated_at));
}

void check_same(const db::Token& got, const db::Token& want) {
  CHECK(got.id == want.id);
  CHECK(got.token_hash == want.token_hash);
  CHECK(got.token_hint == want.token_hint);
  CHECK(got.project_id == want.project_id);
  CHECK(show(got.expires_at) == show(want.expires_at));
  CHECK(got.is_active == want.is_active);
  CHECK(show(got.deactivated_at) == show(want.deactivated_at));
  CHECK(got.request_count == want.request_count);
  CHECK(show(got.max_requests) == show(want.max_requests));
  CHECK(show(got.created_at) == show(want.created_at));
  CHECK(show(got.last_used_at) == show(want.last_used_at));
  CHECK(got.cache_hit_count == want.cache_hit_count);
}

void check_same(const db::AuditEvent& got, const db::AuditEvent& want) {
  CHECK(got.id == want.id);
  CHECK(show(got.timestamp) == show(want.timestamp));
  CHECK(got.action == want.action);
  CHECK(got.actor == want.actor);
  CHECK(got.outcome == want.outcome);
  CHECK(show(got.project_id) == show(want.project_id));
  CHECK(show(got.request_id) == show(want.request_id));
  CHECK(show(got.correlation_id) == show(want.correlation_id));
  CHECK(show(got.client_ip) == show(want.client_ip));
  CHECK(show(got.method) == show(want.method));
  CHECK(show(got.path) == show(want.path));
  CHECK(show(got.user_agent) == show(want.user_agent));
  CHECK(show(got.reason) == show(want.reason));
  CHECK(show(got.token_id) == show(want.token_id));
  // JSONB (PostgreSQL) normalizes whitespace and key order: compare the JSON value, not the text.
  REQUIRE(got.metadata.has_value() == want.metadata.has_value());
  if (want.metadata) CHECK(nlohmann::json::parse(*got.metadata) == nlohmann::json::parse(*want.metadata));
}

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

std::vector<std::string> slice(const std::vector<std::string>& v, std::size_t from, std::size_t n) {
  if (from >= v.size()) return {};
  return {v.begin() + static_cast<std::ptrdiff_t>(from),
          v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size(), from + n))};
}

const char* outcome_name(db::QuotaOutcome o) {
  switch (o) {
    case db::QuotaOutcome::accepted: return "accepted";
    case db::QuotaOutcome::not_found: return "not_found";
    case db::QuotaOutcome::inactive: return "inactive";
    case db::QuotaOutcome::expired: return "expired";
    case db::QuotaOutcome::exhausted: return "exhausted";
  }
  return "?";
}

/// Short names for audit events so a failing list comparison reads `e3 e1 (total 2)`, not uuids.
using Names = std::map<std::string, std::string>;

Names name_events(const std::vector<std::pair<std::string, const db::AuditEvent*>>& named) {
  Names out;
  for (const auto& [name, e] : named) out[e->id] = name;
  return out;
}

/// A filtered audit list as `name name ... (total N)`.
std::string listed(db::Database& d, db::AuditFilter f, const Names& names) {
  if (f.page.page == 1 && f.page.page_size == 20) f.page.page_size = 100;
  const auto page = d.list_audit_events(f);
  std::string out;
  for (const auto& e : page.items) {
    const auto it = names.find(e.id);
    out += (it == names.end() ? e.id : it->second) + " ";
  }
  return out + "(total " + std::to_string(page.total_count) + ")";
}

db::AuditFilter search_for(const std::string& text) {
  db::AuditFilter f;
  f.search = text;
  return f;
}

}  // namespace

void check_repository_contract(const std::string& driver_name, const MakeFresh& make_fresh) {
  auto owned = make_fresh();
  REQUIRE(owned != nullptr);
  db::Database& d = *owned;

  SECTION("driver name and health") {
    CHECK(d.driver_name() == driver_name);
    const auto h = d.health();
    CHECK(h.up);
    CHECK(h.error.empty());
    CHECK(h.latency_ms >= 0);
    CHECK(h.latency_ms < 5000);
    CHECK(h.pool.size >= 1);
    CHECK(h.pool.open >= 1);
    CHECK(h.pool.in_use == 0);
    CHECK(h.pool.waiting == 0);
    CHECK(h.pool.idle + h.pool.in_use == h.pool.open);
    const auto s = d.pool_stats();
    CHECK(s.size == h.pool.size);
    CHECK(s.in_use == 0);
  }

  SECTION("project: create and get round-trip every field") {
    auto active = make_project("alpha", at());
    auto inactive = make_project("beta", at(1s));
    inactive.api_key = "enc:v1:AAAAbase64==";
    inactive.is_active = false;
    inactive.deactivated_at = at(2s);
    inactive.updated_at = at(3s);
    d.create_project(active);
    d.create_project(inactive);
    check_same(d.get_project(active.id), active);
    check_same(d.get_project(inactive.id), inactive);
  }

  SECTION("project: unknown id is NotFound") {
    CHECK_THROWS_AS(d.get_project(util::uuid_v4()), db::NotFound);
    CHECK_THROWS_AS(d.update_project(util::uuid_v4(), db::ProjectUpdate{}, at()), db::NotFound);
  }

  SECTION("project: duplicate name or id is Conflict, the first row stays") {
    const auto first = make_project("same name", at());
    d.create_project(first);
    auto same_name = make_project("same name", at(1s));
    CHECK_THROWS_AS(d.create_project(same_name), db::Conflict);
    auto same_id = make_project("other name", at(1s));
    same_id.id = first.id;
    CHECK_THROWS_AS(d.create_project(same_id), db::Conflict);
    check_same(d.get_project(first.id), first);
    CHECK(d.list_projects({1, 10}).total_count == 1);
  }

  SECTION("project: list is newest first (ties by id) with pages and total") {
    std::vector<db::Project> all;
    for (int i = 0; i < 5; ++i) all.push_back(make_project("p" + std::to_string(i), at(microseconds(i))));
    // Two more with the same created_at as p4: ordered by id DESC among themselves.
    all.push_back(make_project("tie-a", at(4us)));
    all.push_back(make_project("tie-b", at(4us)));
    for (const auto& p : all) d.create_project(p);
    const auto expected = ids_newest_first(all, [](const db::Project& p) { return p.created_at; });

    for (std::int64_t page = 1; page <= 3; ++page) {
      const auto got = d.list_projects({page, 3});
      INFO("page " << page);
      CHECK(got.total_count == 7);
      CHECK(ids(got.items) == slice(expected, static_cast<std::size_t>((page - 1) * 3), 3));
    }
    const auto beyond = d.list_projects({4, 3});
    CHECK(beyond.items.empty());
    CHECK(beyond.total_count == 7);
    const auto one_page = d.list_projects({1, 100});
    CHECK(ids(one_page.items) == expected);
    check_same(one_page.items.front(), *std::find_if(all.begin(), all.end(), [&](const db::Project& p) {
      return p.id == expected.front();
    }));
  }

  SECTION("project: update applies only the set fields and manages deactivated_at") {
    auto p = make_project("before", at());
    d.create_project(p);
    d.create_project(make_project("someone else", at()));

    db::ProjectUpdate rename;
    rename.name = "after";
    auto got = d.update_project(p.id, rename, at(10s));
    p.name = "after";
    p.updated_at = at(10s);
    check_same(got, p);
    check_same(d.get_project(p.id), p);

    db::ProjectUpdate deactivate;
    deactivate.is_active = false;
    got = d.update_project(p.id, deactivate, at(20s));
    p.is_active = false;
    p.deactivated_at = at(20s);
    p.updated_at = at(20s);
    check_same(got, p);

    db::ProjectUpdate new_key;
    new_key.api_key = "enc:v1:newkey";
    got = d.update_project(p.id, new_key, at(30s));
    p.api_key = "enc:v1:newkey";
    p.updated_at = at(30s);  // still inactive, deactivated_at untouched
    check_same(got, p);

    db::ProjectUpdate activate;
    activate.is_active = true;
    got = d.update_project(p.id, activate, at(40s));
    p.is_active = true;
    p.deactivated_at.reset();
    p.updated_at = at(40s);
    check_same(got, p);

    got = d.update_project(p.id, db::ProjectUpdate{}, at(50s));
    p.updated_at = at(50s);
    check_same(got, p);

    db::ProjectUpdate same_name;
    same_name.name = "after";
    CHECK(d.update_project(p.id, same_name, at(60s)).name == "after");
    check_same(d.get_project(p.id), [&] {
      auto q = p;
      q.updated_at = at(60s);
      return q;
    }());
  }

  SECTION("project: renaming onto another project's name is Conflict and changes nothing") {
    const auto a = make_project("a", at());
    const auto b = make_project("b", at());
    d.create_project(a);
    d.create_project(b);
    db::ProjectUpdate u;
    u.name = "a";
    u.api_key = "changed";
    CHECK_THROWS_AS(d.update_project(b.id, u, at(5s)), db::Conflict);
    check_same(d.get_project(b.id), b);
  }

  SECTION("names with SQL metacharacters, parameter markers and non-ASCII are stored verbatim") {
    const std::vector<std::string> names = {
        "O'Brien \"x\" ; DROP TABLE projects; --",
        "M\xC3\xBCller \xC3\xBC \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x9A\x80",  // Müller ü 日本語 🚀
        "$1 ?1 :name @p %s \\ back\\slash\ttab\nnewline",
        "' OR '1'='1",
    };
    std::vector<db::Project> projects;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto p = make_project(names[i], at(std::chrono::seconds(i)));
      p.api_key = "key-" + names[i];
      projects.push_back(p);
      d.create_project(p);
    }
    for (const auto& p : projects) check_same(d.get_project(p.id), p);
    const auto all_projects = d.list_projects({1, 10});
    REQUIRE(all_projects.total_count == static_cast<std::int64_t>(names.size()));
    for (const auto& p : all_projects.items) CHECK(std::find(names.begin(), names.end(), p.name) != names.end());

    auto t = make_token(projects[1].id, at());
    t.token_hint = "sk-\xC3\x9C\xE6\x97\xA5'\"...\xF0\x9F\x9A\x80;--";
    d.create_token(t);
    check_same(d.get_token(t.id), t);

    auto e = make_event(at(), names[0]);
    e.actor = names[1];
    e.reason = names[2];
    e.user_agent = names[3];
    e.metadata = R"({"name": "O'Brien \"x\" \u65e5\u672c \ud83d\ude80", "sql": "; DROP TABLE audit_events; --"})";
    d.insert_audit_events({e});
    check_same(d.get_audit_event(e.id), e);
    const Names names_e = {{e.id, "e"}};
    CHECK(listed(d, search_for("DROP TABLE projects"), names_e) == "e (total 1)");
    CHECK(listed(d, search_for("\xE6\x97\xA5\xE6\x9C\xAC"), names_e) == "e (total 1)");

    db::ProjectUpdate u;
    u.name = "Robert'); DROP TABLE tokens;--";
    CHECK(d.update_project(projects[0].id, u, at(1h)).name == *u.name);
    CHECK(d.get_token(t.id).token_hint == t.token_hint);  // tokens table still there
  }

  SECTION("timestamps round-trip to the microsecond") {
    const std::vector<TimePoint> instants = {
        utc(2026, 1, 2, 3, 4, 5, 1),         utc(2026, 1, 2, 3, 4, 5, 999999), utc(2000, 2, 29, 23, 59, 59, 500000),
        utc(2099, 12, 31, 23, 59, 59, 999999), utc(1999, 12, 31, 23, 59, 59, 0),
    };
    for (std::size_t i = 0; i < instants.size(); ++i) {
      const auto ts = instants[i];
      INFO("instant " << show(ts));
      auto p = make_project("time " + std::to_string(i), ts);
      p.updated_at = ts + 1us;
      p.is_active = false;
      p.deactivated_at = ts + 2us;
      d.create_project(p);
      check_same(d.get_project(p.id), p);

      auto t = make_token(p.id, ts, 5, ts + 3us);
      t.last_used_at = ts + 4us;
      d.create_token(t);
      check_same(d.get_token(t.id), t);

      auto e = make_event(ts);
      d.insert_audit_events({e});
      check_same(d.get_audit_event(e.id), e);
    }
    // Microsecond order survives in the lists too.
    const auto by_time = d.list_projects({1, 100});
    REQUIRE(by_time.items.size() == instants.size());
    for (std::size_t i = 1; i < by_time.items.size(); ++i) {
      CHECK(by_time.items[i - 1].created_at > by_time.items[i].created_at);
    }
  }

  SECTION("token: create, get and find_token_by_hash round-trip every field") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto limited = make_token(p.id, at(1s), 100, at(1h));
    limited.request_count = 7;
    limited.cache_hit_count = 3;
    limited.last_used_at = at(2s);
    auto unlimited = make_token(p.id, at(2s));
    auto revoked = make_token(p.id, at(3s), 0);
    revoked.is_active = false;
    revoked.deactivated_at = at(4s);
    for (const auto& t : {limited, unlimited, revoked}) d.create_token(t);
    for (const auto& t : {limited, unlimited, revoked}) {
      check_same(d.get_token(t.id), t);
      const auto found = d.find_token_by_hash(t.token_hash);
      REQUIRE(found.has_value());
      check_same(*found, t);
    }
  }

  SECTION("token: unknown project is Invalid and stores nothing") {
    const auto t = make_token(util::uuid_v4(), at());
    CHECK_THROWS_AS(d.create_token(t), db::Invalid);
    CHECK_FALSE(d.find_token_by_hash(t.token_hash).has_value());
    CHECK(d.list_tokens(std::nullopt, {1, 10}).total_count == 0);
  }

  SECTION("token: duplicate hash or id is Conflict") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto t = make_token(p.id, at());
    d.create_token(t);
    auto same_hash = make_token(p.id, at(1s));
    same_hash.token_hash = t.token_hash;
    CHECK_THROWS_AS(d.create_token(same_hash), db::Conflict);
    auto same_id = make_token(p.id, at(1s));
    same_id.id = t.id;
    CHECK_THROWS_AS(d.create_token(same_id), db::Conflict);
    check_same(d.get_token(t.id), t);
    CHECK(d.list_tokens(std::nullopt, {1, 10}).total_count == 1);
  }

  SECTION("token: unknown id is NotFound, unknown hash is empty") {
    CHECK_THROWS_AS(d.get_token(util::uuid_v4()), db::NotFound);
    CHECK_THROWS_AS(d.update_token(util::uuid_v4(), db::TokenUpdate{}, at()), db::NotFound);
    CHECK_FALSE(d.find_token_by_hash(util::sha256_hex("nope")).has_value());
  }

  SECTION("token: list filters by project, newest first (ties by id), with pages and total") {
    const auto a = make_project("a", at());
    const auto b = make_project("b", at());
    d.create_project(a);
    d.create_project(b);
    std::vector<db::Token> of_a, all;
    for (int i = 0; i < 5; ++i) of_a.push_back(make_token(a.id, at(microseconds(i))));
    of_a.push_back(make_token(a.id, at(2us)));  // tie with of_a[2]
    std::vector<db::Token> of_b = {make_token(b.id, at(1s)), make_token(b.id, at(-1s))};
    for (const auto& t : of_a) d.create_token(t);
    for (const auto& t : of_b) d.create_token(t);
    all = of_a;
    all.insert(all.end(), of_b.begin(), of_b.end());
    auto created = [](const db::Token& t) { return t.created_at; };

    const auto expected_a = ids_newest_first(of_a, created);
    for (std::int64_t page = 1; page <= 3; ++page) {
      INFO("page " << page);
      const auto got = d.list_tokens(a.id, {page, 4});
      CHECK(got.total_count == 6);
      CHECK(ids(got.items) == slice(expected_a, static_cast<std::size_t>((page - 1) * 4), 4));
    }
    const auto got_b = d.list_tokens(b.id, {1, 10});
    CHECK(got_b.total_count == 2);
    CHECK(ids(got_b.items) == ids_newest_first(of_b, created));
    const auto got_all = d.list_tokens(std::nullopt, {1, 100});
    CHECK(got_all.total_count == 8);
    CHECK(ids(got_all.items) == ids_newest_first(all, created));
    const auto none = d.list_tokens(util::uuid_v4(), {1, 10});
    CHECK(none.items.empty());
    CHECK(none.total_count == 0);
  }

  SECTION("token: update applies only the set fields and manages deactivated_at") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto t = make_token(p.id, at(), 5, at(1h));
    t.request_count = 2;
    d.create_token(t);

    db::TokenUpdate raise;
    raise.max_requests = std::optional<std::int64_t>(10);
    auto got = d.update_token(t.id, raise, at(1s));
    t.max_requests = 10;
    check_same(got, t);

    db::TokenUpdate unlimited;
    unlimited.max_requests = std::optional<std::int64_t>();
    got = d.update_token(t.id, unlimited, at(2s));
    t.max_requests.reset();
    check_same(got, t);

    db::TokenUpdate deactivate;
    deactivate.is_active = false;
    got = d.update_token(t.id, deactivate, at(3s));
    t.is_active = false;
    t.deactivated_at = at(3s);
    check_same(got, t);

    got = d.update_token(t.id, db::TokenUpdate{}, at(4s));
    check_same(got, t);

    db::TokenUpdate activate;
    activate.is_active = true;
    activate.max_requests = std::optional<std::int64_t>(3);
    got = d.update_token(t.id, activate, at(5s));
    t.is_active = true;
    t.deactivated_at.reset();
    t.max_requests = 3;
    check_same(got, t);
    check_same(d.get_token(t.id), t);
  }

  SECTION("token: revoke_token reports whether it was active and keeps the first deactivation time") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto t = make_token(p.id, at());
    const auto other = make_token(p.id, at());
    d.create_token(t);
    d.create_token(other);
    CHECK(d.revoke_token(t.id, at(1s)));
    t.is_active = false;
    t.deactivated_at = at(1s);
    check_same(d.get_token(t.id), t);
    CHECK_FALSE(d.revoke_token(t.id, at(2s)));
    check_same(d.get_token(t.id), t);
    check_same(d.get_token(other.id), other);
    CHECK_THROWS_AS(d.revoke_token(util::uuid_v4(), at()), db::NotFound);
  }

  SECTION("token: revoke_project_tokens counts and touches only that project") {
    const auto a = make_project("a", at());
    const auto b = make_project("b", at());
    const auto empty = make_project("empty", at());
    for (const auto& p : {a, b, empty}) d.create_project(p);
    auto a1 = make_token(a.id, at()), a2 = make_token(a.id, at()), a3 = make_token(a.id, at());
    const auto b1 = make_token(b.id, at());
    for (const auto& t : {a1, a2, a3, b1}) d.create_token(t);
    REQUIRE(d.revoke_token(a3.id, at(1s)));

    const auto r = d.revoke_project_tokens(a.id, at(5s));
    CHECK(r.revoked_count == 2);
    CHECK(r.already_revoked_count == 1);
    CHECK(r.total_tokens == 3);
    for (auto* t : {&a1, &a2}) {
      t->is_active = false;
      t->deactivated_at = at(5s);
      check_same(d.get_token(t->id), *t);
    }
    CHECK(show(d.get_token(a3.id).deactivated_at) == show(at(1s)));
    check_same(d.get_token(b1.id), b1);

    const auto again = d.revoke_project_tokens(a.id, at(6s));
    CHECK(again.revoked_count == 0);
    CHECK(again.already_revoked_count == 3);
    CHECK(again.total_tokens == 3);

    const auto none = d.revoke_project_tokens(empty.id, at(6s));
    CHECK(none.revoked_count == 0);
    CHECK(none.already_revoked_count == 0);
    CHECK(none.total_tokens == 0);
    CHECK_THROWS_AS(d.revoke_project_tokens(util::uuid_v4(), at()), db::NotFound);
  }

  SECTION("quota: every outcome, with the current row") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto now = at(100s);
    const auto limited = make_token(p.id, at(), 2, at(200s));
    const auto unlimited = make_token(p.id, at());
    const auto revoked = make_token(p.id, at(), 5);
    const auto expired_now = make_token(p.id, at(), 5, now);          // expires_at == now: expired
    const auto expired_before = make_token(p.id, at(), 5, now - 1us);
    const auto expires_next_us = make_token(p.id, at(), 5, now + 1us);
    const auto zero = make_token(p.id, at(), 0);
    for (const auto& t : {limited, unlimited, revoked, expired_now, expired_before, expires_next_us, zero}) {
      d.create_token(t);
    }
    REQUIRE(d.revoke_token(revoked.id, at(1s)));

    auto r = d.consume_quota(limited.id, now);
    REQUIRE(r.outcome == db::QuotaOutcome::accepted);
    REQUIRE(r.token.has_value());
    CHECK(r.token->id == limited.id);
    CHECK(r.token->request_count == 1);
    CHECK(show(r.token->last_used_at) == show(now));
    r = d.consume_quota(limited.id, now + 1s);
    CHECK(r.outcome == db::QuotaOutcome::accepted);
    CHECK(r.token->request_count == 2);
    r = d.consume_quota(limited.id, now + 2s);
    CHECK(outcome_name(r.outcome) == std::string("exhausted"));
    REQUIRE(r.token.has_value());
    CHECK(r.token->request_count == 2);
    CHECK(d.get_token(limited.id).request_count == 2);
    CHECK(show(d.get_token(limited.id).last_used_at) == show(now + 1s));

    for (int i = 1; i <= 3; ++i) {
      r = d.consume_quota(unlimited.id, now);
      CHECK(r.outcome == db::QuotaOutcome::accepted);
      CHECK(r.token->request_count == i);
    }

    const std::vector<std::pair<const db::Token*, const char*>> refused = {
        {&revoked, "inactive"}, {&expired_now, "expired"}, {&expired_before, "expired"}, {&zero, "exhausted"}};
    for (const auto& [t, expected] : refused) {
      r = d.consume_quota(t->id, now);
      CHECK(outcome_name(r.outcome) == std::string(expected));
      REQUIRE(r.token.has_value());
      CHECK(r.token->id == t->id);
      CHECK(r.token->request_count == 0);
      CHECK(d.get_token(t->id).request_count == 0);
    }

    r = d.consume_quota(expires_next_us.id, now);
    CHECK(outcome_name(r.outcome) == std::string("accepted"));

    r = d.consume_quota(util::uuid_v4(), now);
    CHECK(outcome_name(r.outcome) == std::string("not_found"));
    CHECK_FALSE(r.token.has_value());
  }

  SECTION("quota: 8 threads x 50 attempts on max_requests=100 accept exactly 100") {
    const auto p = make_project("p", at());
    d.create_project(p);
    const auto t = make_token(p.id, at(), 100);
    d.create_token(t);
    std::atomic<int> accepted{0}, exhausted{0}, other{0};
    std::mutex error_mutex;
    std::string first_error;
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        for (int j = 0; j < 50; ++j) {
          try {
            const auto r = d.consume_quota(t.id, at(std::chrono::seconds(1 + i * 50 + j)));
            if (r.outcome == db::QuotaOutcome::accepted) {
              ++accepted;
            } else if (r.outcome == db::QuotaOutcome::exhausted) {
              ++exhausted;
            } else {
              ++other;
            }
          } catch (const std::exception& e) {
            const std::scoped_lock lock(error_mutex);
            if (first_error.empty()) first_error = e.what();
            ++other;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    INFO("first error: " << first_error);
    CHECK(other.load() == 0);
    CHECK(accepted.load() == 100);
    CHECK(exhausted.load() == 300);
    CHECK(d.get_token(t.id).request_count == 100);
  }

  SECTION("usage: add_usage adds batches, keeps the latest last_used_at, ignores unknown tokens") {
    const auto p = make_project("p", at());
    d.create_project(p);
    auto t1 = make_token(p.id, at());
    auto t2 = make_token(p.id, at());
    t2.last_used_at = at(50s);
    const auto t3 = make_token(p.id, at());
    for (const auto& t : {t1, t2, t3}) d.create_token(t);

    d.add_usage({
        {t1.id, 3, 1, at(10s)},
        {t2.id, 2, 5, at(20s)},           // older than the stored last_used_at: it stays
        {util::uuid_v4(), 7, 7, at(30s)},  // deleted meanwhile: ignored, the rest still applies
        {t1.id, 2, 0, at(5s)},            // same token twice in one batch: both count
    });
    t1.request_count = 5;
    t1.cache_hit_count = 1;
    t1.last_used_at = at(10s);
    t2.request_count = 2;
    t2.cache_hit_count = 5;
    check_same(d.get_token(t1.id), t1);
    check_same(d.get_token(t2.id), t2);
    check_same(d.get_token(t3.id), t3);

    d.add_usage({{t2.id, 1, 0, at(60s)}});
    t2.request_count = 3;
    t2.last_used_at = at(60s);
    check_same(d.get_token(t2.id), t2);

    d.add_usage({});
    check_same(d.get_token(t1.id), t1);
  }

  SECTION("audit: insert and get round-trip every field, all or nothing, NotFound") {
    auto full = make_event(at(), "token.revoke", "denied");
    full.actor = "token:" + util::uuid_v4();
    full.project_id = util::uuid_v4();
    full.request_id = "req-123";
    full.correlation_id = "corr-456";
    full.client_ip = "2001:db8::1";
    full.method = "DELETE";
    full.path = "/manage/tokens/abc";
    full.user_agent = "curl/8.0";
    full.reason = "token already revoked";
    full.token_id = util::uuid_v4();
    full.metadata = R"({"model":"gpt-4o","n":2,"nested":{"ok":true,"list":[1,2,3]}})";
    const auto minimal = make_event(at(1s));
    d.insert_audit_events({full, minimal});
    check_same(d.get_audit_event(full.id), full);
    check_same(d.get_audit_event(minimal.id), minimal);

    d.insert_audit_events({});
    CHECK_THROWS_AS(d.get_audit_event(util::uuid_v4()), db::NotFound);

    // outcome is CHECK-constrained: the whole batch is refused.
    const auto good = make_event(at(2s));
    const auto bad = make_event(at(3s), "misc.event", "bogus");
    CHECK_THROWS_AS(d.insert_audit_events({good, bad}), db::Invalid);
    CHECK_THROWS_AS(d.get_audit_event(good.id), db::NotFound);
    CHECK(d.list_audit_events({}).total_count == 2);
  }

  SECTION("audit: list is newest first (ties by id) with pages and total") {
    std::vector<db::AuditEvent> all;
    for (int i = 0; i < 25; ++i) all.push_back(make_event(at(std::chrono::seconds(i))));
    all[11].timestamp = all[10].timestamp;
    all[12].timestamp = all[10].timestamp;
    // Two inserts: lists must not depend on insertion order.
    d.insert_audit_events(std::vector<db::AuditEvent>(all.begin() + 13, all.end()));
    d.insert_audit_events(std::vector<db::AuditEvent>(all.begin(), all.begin() + 13));
    const auto expected = ids_newest_first(all, [](const db::AuditEvent& e) { return e.timestamp; });
    for (std::int64_t page = 1; page <= 4; ++page) {
      INFO("page " << page);
      db::AuditFilter f;
      f.page = {page, 10};
      const auto got = d.list_audit_events(f);
      CHECK(got.total_count == 25);
      CHECK(ids(got.items) == slice(expected, static_cast<std::size_t>((page - 1) * 10), 10));
    }
    db::AuditFilter one;
    one.page = {1, 1};
    const auto first = d.list_audit_events(one);
    REQUIRE(first.items.size() == 1);
    check_same(first.items[0], *std::find_if(all.begin(), all.end(), [&](const db::AuditEvent& e) {
      return e.id == expected.front();
    }));
  }

  SECTION("audit: every filter matches exactly, filters combine, pages apply after filtering") {
    const auto p1 = util::uuid_v4();
    const auto p2 = util::uuid_v4();
    auto e1 = make_event(at(1s), "project.create", "success");
    e1.project_id = p1;
    e1.request_id = "req-1";
    e1.client_ip = "10.0.0.1";
    e1.method = "POST";
    e1.path = "/manage/projects";
    auto e2 = make_event(at(2s), "token.create", "failure");
    e2.project_id = p1;
    e2.request_id = "req-2";
    e2.client_ip = "10.0.0.2";
    e2.method = "POST";
    e2.path = "/manage/tokens";
    auto e3 = make_event(at(3s), "token.revoke", "denied");
    e3.actor = "system";
    e3.project_id = p2;
    e3.request_id = "req-10";
    e3.client_ip = "10.0.0.1";
    e3.method = "DELETE";
    e3.path = "/manage/tokens/abc";
    auto e4 = make_event(at(4s), "proxy.request", "error");
    e4.actor = "token:xyz";
    e4.project_id = p2;
    e4.method = "GET";
    e4.path = "/v1/models";
    auto e5 = make_event(at(5s), "project.create", "success");
    e5.project_id = p2;
    d.insert_audit_events({e1, e2, e3, e4, e5});
    const auto names = name_events({{"e1", &e1}, {"e2", &e2}, {"e3", &e3}, {"e4", &e4}, {"e5", &e5}});
    auto with = [&](auto setter) {
      db::AuditFilter f;
      setter(f);
      return listed(d, f, names);
    };

    CHECK(with([](auto& f) { f.action = "project.create"; }) == "e5 e1 (total 2)");
    CHECK(with([&](auto& f) { f.project_id = p1; }) == "e2 e1 (total 2)");
    CHECK(with([](auto& f) { f.outcome = "denied"; }) == "e3 (total 1)");
    CHECK(with([](auto& f) { f.outcome = "error"; }) == "e4 (total 1)");
    CHECK(with([](auto& f) { f.actor = "system"; }) == "e3 (total 1)");
    CHECK(with([](auto& f) { f.request_id = "req-1"; }) == "e1 (total 1)");
    CHECK(with([](auto& f) { f.client_ip = "10.0.0.1"; }) == "e3 e1 (total 2)");
    CHECK(with([](auto& f) { f.method = "POST"; }) == "e2 e1 (total 2)");
    CHECK(with([](auto& f) { f.path = "/manage/tokens"; }) == "e2 (total 1)");
    CHECK(with([&](auto& f) {
            f.action = "project.create";
            f.project_id = p2;
          }) == "e5 (total 1)");
    CHECK(with([](auto& f) {
            f.action = "token.create";
            f.outcome = "success";
          }) == "(total 0)");
    CHECK(with([](auto& f) { f.action = "nothing.like.this"; }) == "(total 0)");
    CHECK(with([](auto& f) {
            f.client_ip = "10.0.0.1";
            f.page = {2, 1};
          }) == "e1 (total 2)");
    CHECK(with([](auto& f) {
            f.client_ip = "10.0.0.1";
            f.page = {3, 1};
          }) == "(total 2)");
  }

  SECTION("audit: time range bounds are inclusive to the microsecond") {
    const auto a = make_event(at(1s) - 1us), b = make_event(at(1s)), c = make_event(at(2s)),
               e = make_event(at(3s)), f = make_event(at(3s) + 1us);
    d.insert_audit_events({a, b, c, e, f});
    const auto names = name_events({{"a", &a}, {"b", &b}, {"c", &c}, {"e", &e}, {"f", &f}});
    auto range = [&](std::optional<TimePoint> start, std::optional<TimePoint> end) {
      db::AuditFilter filter;
      filter.start_time = start;
      filter.end_time = end;
      return listed(d, filter, names);
    };
    CHECK(range(at(1s), at(3s)) == "e c b (total 3)");
    CHECK(range(at(2s), std::nullopt) == "f e c (total 3)");
    CHECK(range(std::nullopt, at(1s)) == "b a (total 2)");
    CHECK(range(at(2s), at(2s)) == "c (total 1)");
    CHECK(range(at(3s), at(1s)) == "(total 0)");
  }

  SECTION("audit: search is a case-insensitive substring match with %, _ and \\ taken literally") {
    auto s1 = make_event(at(1s), "token.revoke", "failure");
    s1.reason = "100% done";
    auto s2 = make_event(at(2s), "token.create");
    s2.reason = "100 percent done";
    auto s3 = make_event(at(3s));
    s3.reason = "a_b";
    auto s4 = make_event(at(4s));
    s4.reason = "axb";
    auto s5 = make_event(at(5s));
    s5.path = "/v1/Chat/Completions";
    auto s6 = make_event(at(6s));
    s6.user_agent = "OpenAI/Python 1.2";
    auto s7 = make_event(at(7s));
    s7.client_ip = "192.168.7.7";
    auto s8 = make_event(at(8s));
    s8.metadata = R"({"model": "GPT-4o-mini"})";
    auto s9 = make_event(at(9s));
    s9.reason = "back\\slash";
    auto s10 = make_event(at(10s));
    s10.actor = "Management-Console";
    auto s11 = make_event(at(11s));
    s11.request_id = "needle-in-request-id";  // not a searched column
    d.insert_audit_events({s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11});
    const auto names = name_events({{"s1", &s1}, {"s2", &s2}, {"s3", &s3}, {"s4", &s4}, {"s5", &s5}, {"s6", &s6},
                                    {"s7", &s7}, {"s8", &s8}, {"s9", &s9}, {"s10", &s10}, {"s11", &s11}});
    auto search = [&](const std::string& text) { return listed(d, search_for(text), names); };

    CHECK(search("0%") == "s1 (total 1)");
    CHECK(search("%") == "s1 (total 1)");
    CHECK(search("a_b") == "s3 (total 1)");
    CHECK(search("_") == "s3 (total 1)");
    CHECK(search("k\\s") == "s9 (total 1)");
    CHECK(search("\\") == "s9 (total 1)");
    CHECK(search("TOKEN.") == "s2 s1 (total 2)");
    CHECK(search("chat/completions") == "s5 (total 1)");
    CHECK(search("openai/PYTHON") == "s6 (total 1)");
    CHECK(search("168.7") == "s7 (total 1)");
    CHECK(search("gpt-4O") == "s8 (total 1)");
    CHECK(search("console") == "s10 (total 1)");
    CHECK(search("DONE") == "s2 s1 (total 2)");
    CHECK(search("needle") == "(total 0)");

    auto done_ok = search_for("done");
    done_ok.outcome = "success";
    CHECK(listed(d, done_ok, names) == "s2 (total 1)");
    auto done_paged = search_for("done");
    done_paged.page = {2, 1};
    CHECK(listed(d, done_paged, names) == "s1 (total 2)");
  }
}

}  // namespace llmproxy::contract
