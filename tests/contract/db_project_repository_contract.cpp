// The repository contract, projects: create, get, list, update, and the conflicts they refuse.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "contract/db_repository_contract_helpers.hpp"
#include "llmproxy/db/errors.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::contract {

using namespace std::chrono_literals;
using db::TimePoint;
using std::chrono::microseconds;

void check_project_repository_contract(const MakeFresh& make_fresh) {
  auto owned = open_fresh(make_fresh);
  db::Database& d = *owned;

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

  SECTION("project: list is by name in byte order with pages and total") {
    // Created newest-name-first and in mixed case, so neither creation time nor a locale gives this order.
    const std::vector<std::string> names{"zeta", "Zeta", "beta", "Beta", "_under", "\xC3\xA9t\xC3\xA9", "alpha"};
    std::vector<db::Project> all;
    for (std::size_t i = 0; i < names.size(); ++i) {
      all.push_back(make_project(names[i], at(microseconds(static_cast<std::int64_t>(i)))));
    }
    for (const auto& p : all) d.create_project(p);
    std::vector<db::Project> sorted = all;
    std::sort(sorted.begin(), sorted.end(), [](const db::Project& a, const db::Project& b) { return a.name < b.name; });
    const auto expected = ids(sorted);
    REQUIRE(sorted.front().name == "Beta");
    REQUIRE(sorted.back().name == "\xC3\xA9t\xC3\xA9");

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
    check_same(one_page.items.front(), sorted.front());
    // The largest page size (the management API's "every row") is a valid LIMIT on every driver.
    const auto every = d.list_projects({1, std::numeric_limits<std::int64_t>::max()});
    CHECK(ids(every.items) == expected);
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
}

}  // namespace llmproxy::contract
