// config/database_url: the one set of DATABASE_URL rules (form, redaction, password spellings).
#include <catch2/catch.hpp>

#include "llmproxy/config/database_url.hpp"

namespace cfg = llmproxy::config;

TEST_CASE("database_url_form: a URI by its scheme, matched case-sensitively like libpq", "[config][database_url]") {
  CHECK(cfg::database_url_form("postgres://u:p@h/db") == cfg::DatabaseUrlForm::uri);
  CHECK(cfg::database_url_form("postgresql://h/db") == cfg::DatabaseUrlForm::uri);
  CHECK(cfg::database_url_form("postgres://") == cfg::DatabaseUrlForm::uri);
  // libpq does not take these as URIs either, and they are no key=value text: invalid, never shown.
  CHECK(cfg::database_url_form("POSTGRES://u:hunter2@h/db") == cfg::DatabaseUrlForm::invalid);
  CHECK(cfg::database_url_form("Postgresql://h/db") == cfg::DatabaseUrlForm::invalid);
  CHECK(cfg::database_url_form("mysql://h/db") == cfg::DatabaseUrlForm::invalid);
  CHECK(cfg::redact_database_url("POSTGRES://u:hunter2@h/db") == "<redacted>");
}

TEST_CASE("database_url_form: key=value text needs at least one well-formed pair", "[config][database_url]") {
  CHECK(cfg::database_url_form("host=db") == cfg::DatabaseUrlForm::key_value);
  CHECK(cfg::database_url_form("  host = db   password = 'a b\\'c'  ") == cfg::DatabaseUrlForm::key_value);
  CHECK(cfg::database_url_form("") == cfg::DatabaseUrlForm::invalid);
  CHECK(cfg::database_url_form("   ") == cfg::DatabaseUrlForm::invalid);
  CHECK(cfg::database_url_form("host") == cfg::DatabaseUrlForm::invalid);
  CHECK(cfg::database_url_form("=db") == cfg::DatabaseUrlForm::invalid);
  CHECK(cfg::database_url_form("password='unterminated") == cfg::DatabaseUrlForm::invalid);
}

TEST_CASE("database_url_passwords lists every spelling a driver message could echo", "[config][database_url]") {
  using V = std::vector<std::string>;
  CHECK(cfg::database_url_passwords("postgres://u:hunter2@h/db") == V{"hunter2"});
  CHECK(cfg::database_url_passwords("postgres://u:p%40ss@h/db") == V{"p%40ss", "p@ss"});
  CHECK(cfg::database_url_passwords("postgres://u@h/db?sslmode=require&password=s%20cret") == V{"s%20cret", "s cret"});
  CHECK(cfg::database_url_passwords("postgres://u@h/db") == V{});
  CHECK(cfg::database_url_passwords("host=db password='it\\'s' user=x") == V{"it's"});
  CHECK(cfg::database_url_passwords("host=db PASSWORD=abc") == V{"abc"});
  CHECK(cfg::database_url_passwords("host=db") == V{});
  CHECK(cfg::database_url_passwords("not a url") == V{});
}

TEST_CASE("scrub_database_url_passwords masks each spelling in a message", "[config][database_url]") {
  const std::string url = "postgres://app:p%40ss@db:5432/llm";
  CHECK(cfg::scrub_database_url_passwords("auth failed for app with p@ss and p%40ss", url) ==
        "auth failed for app with *** and ***");
  CHECK(cfg::scrub_database_url_passwords("no secret here", url) == "no secret here");
  CHECK(cfg::scrub_database_url_passwords("pw=x x x", "host=h password=x") == "pw=*** *** ***");
}
