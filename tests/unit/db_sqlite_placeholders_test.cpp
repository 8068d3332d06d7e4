// $n -> ?n rewriting of the SQLite driver: every query is written once in the PostgreSQL style, and SQLite
// would read a bare `$1` as a named parameter.
#include "llmproxy/db/sqlite/detail/placeholders.hpp"

#include <catch2/catch.hpp>

using llmproxy::db::sqlite::detail::rewrite_placeholders;

TEST_CASE("rewrite_placeholders turns $n into ?n with the same number", "[unit][sqlite][placeholders]") {
  CHECK(rewrite_placeholders("SELECT * FROM t WHERE id = $1") == "SELECT * FROM t WHERE id = ?1");
  CHECK(rewrite_placeholders("VALUES ($1, $2, $3)") == "VALUES (?1, ?2, ?3)");
  CHECK(rewrite_placeholders("LIMIT $10 OFFSET $11") == "LIMIT ?10 OFFSET ?11");
  CHECK(rewrite_placeholders("a=$1,b=$123") == "a=?1,b=?123");
}

TEST_CASE("rewrite_placeholders keeps a reused parameter one parameter", "[unit][sqlite][placeholders]") {
  CHECK(rewrite_placeholders("SET last_used_at = $2 WHERE expires_at > $2 AND id = $1") ==
        "SET last_used_at = ?2 WHERE expires_at > ?2 AND id = ?1");
}

TEST_CASE("rewrite_placeholders leaves quoted text and comments alone", "[unit][sqlite][placeholders]") {
  SECTION("string literals, including doubled quotes") {
    CHECK(rewrite_placeholders("WHERE a = '$1' AND b = $1") == "WHERE a = '$1' AND b = ?1");
    CHECK(rewrite_placeholders("WHERE a = 'it''s $2' AND b = $3") == "WHERE a = 'it''s $2' AND b = ?3");
    CHECK(rewrite_placeholders("LIKE $1 ESCAPE '\\' AND x = $2") == "LIKE ?1 ESCAPE '\\' AND x = ?2");
  }
  SECTION("quoted identifiers") {
    CHECK(rewrite_placeholders("SELECT \"col$1\" FROM t WHERE x = $1") == "SELECT \"col$1\" FROM t WHERE x = ?1");
    CHECK(rewrite_placeholders("SELECT `a$1`, [b$2] FROM t WHERE x = $2") == "SELECT `a$1`, [b$2] FROM t WHERE x = ?2");
  }
  SECTION("comments") {
    CHECK(rewrite_placeholders("SELECT $1 -- not $2\nFROM t WHERE y = $3") ==
          "SELECT ?1 -- not $2\nFROM t WHERE y = ?3");
    CHECK(rewrite_placeholders("SELECT /* $1 */ $2") == "SELECT /* $1 */ ?2");
  }
  SECTION("unterminated quote or comment copies the rest unchanged") {
    CHECK(rewrite_placeholders("SELECT $1, 'abc $2") == "SELECT ?1, 'abc $2");
    CHECK(rewrite_placeholders("SELECT $1 /* $2") == "SELECT ?1 /* $2");
  }
}

TEST_CASE("rewrite_placeholders ignores $ that is not a positional parameter", "[unit][sqlite][placeholders]") {
  CHECK(rewrite_placeholders("SELECT $name, $ 1, $") == "SELECT $name, $ 1, $");
  CHECK(rewrite_placeholders("SELECT price$1 FROM t") == "SELECT price$1 FROM t");
  CHECK(rewrite_placeholders("") == "");
  CHECK(rewrite_placeholders("SELECT 1") == "SELECT 1");
}
