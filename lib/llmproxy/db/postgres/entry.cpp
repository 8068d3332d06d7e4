#include "llmproxy/db/postgres/entry.hpp"

#include "llmproxy/db/postgres/postgres_database.hpp"
#include "llmproxy/db/postgres/raw_connection.hpp"

extern "C" const llmproxy::db::postgres::Entry* llmproxy_postgres_entry() {
  static constexpr llmproxy::db::postgres::Entry entry{llmproxy::db::postgres::kEntryVersion,
                                                       &llmproxy::db::postgres::open,
                                                       &llmproxy::db::postgres::open_raw};
  return &entry;
}
