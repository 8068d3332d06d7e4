#pragma once
/// Result rows -> repository models. Columns are read by position in the order of db/sql.hpp, starting at
/// `first` (1 in a paged list, after `total`).
#include <functional>

#include "llmproxy/db/models.hpp"
#include "llmproxy/db/sqlite/detail/connection.hpp"
#include "llmproxy/migrate/backend.hpp"

namespace llmproxy::db::sqlite::detail {

Project project_of(const Query& q, int first = 0);
Token token_of(const Query& q, int first = 0);
AuditEvent audit_event_of(const Query& q, int first = 0);
/// A row of sql::usage_query_text (usage_key, requests, prompt_tokens, completion_tokens, cache_hits).
UsageRow usage_row_of(const Query& q);
migrate::AppliedMigration applied_of(const Query& q);

/// Steps through a paged statement of db/sql.hpp (`total`, then the item columns) and decodes its items.
template <class T>
Page<T> page_of(Query& q, T (*decode)(const Query&, int)) {
  Page<T> page;
  while (q.next()) {
    page.total_count = q.int64(0);
    if (!q.is_null(1)) page.items.push_back(decode(q, 1));
  }
  return page;
}

}  // namespace llmproxy::db::sqlite::detail
