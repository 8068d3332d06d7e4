#pragma once
/// Statement parameters in PostgreSQL's text format: every value is bound, never spliced into SQL.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmproxy/db/models.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::db::postgres::detail {

/// Values for $1..$n in order; nullopt binds NULL. Throws db::Invalid for text holding a NUL byte (PostgreSQL
/// text cannot store one and libpq would silently cut the value there).
class Params {
 public:
  Params& text(const std::string& value);
  Params& text(const std::optional<std::string>& value);
  Params& boolean(bool value);
  Params& boolean(std::optional<bool> value);
  Params& integer(std::int64_t value);
  Params& integer(std::optional<std::int64_t> value);
  /// Bound as util::format_time text (UTC); the SQL casts it with `::timestamptz`.
  Params& time(util::TimePoint value);
  Params& time(const std::optional<util::TimePoint>& value);
  Params& null();

  /// One C string per parameter, nullptr for NULL; valid while this object lives and is not modified.
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
};

/// A PostgreSQL array literal (`{"a","b"}`) of quoted, escaped elements, for binding to `$n::text[]` and the like.
std::string array_literal(const std::vector<std::string>& elements);

/// A usage batch as the parallel arrays of kAddUsage ($1 ids, $2 requests, $3 cache hits, $4 last used, $5 prompt
/// tokens, $6 completion tokens); `ids` alone is kLockUsageTokens' $1. `deltas` must hold one entry per token
/// (db::merge_usage).
struct UsageArrays {
  std::string ids;
  Params update;
};
UsageArrays usage_arrays(const std::vector<UsageDelta>& deltas);
/// Daily deltas as the parallel arrays of kAddDailyUsage ($1..$8). One entry per key (db::merge_daily_usage).
Params daily_usage_arrays(const std::vector<DailyUsageDelta>& deltas);

}  // namespace llmproxy::db::postgres::detail
