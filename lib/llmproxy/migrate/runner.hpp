#pragma once
/// The migration runner (SPEC §4.4): decides what to apply or revert and in which order; the driver (Backend)
/// does the locking and the transactional work. Blocking; used at boot and by the `migrate` CLI, never on an
/// I/O thread.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmproxy/migrate/backend.hpp"
#include "llmproxy/migrate/embedded.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::migrate {

/// Splits a migration file into statements. A statement ends at a `;` that ends a line, ignoring trailing
/// whitespace and a trailing `--` comment (a `;` inside a `--` comment never counts); the `;` itself is dropped.
/// Chunks made only of blank and `--` comment lines are dropped; leading comment lines of a statement are
/// removed. So a `;` inside a statement (string literal, function body) is safe as long as it does not end a line.
std::vector<std::string> split_statements(std::string_view sql);

/// SHA-256 hex of the up file: what schema_migrations.checksum records.
std::string checksum(const MigrationFile& file);

/// `0001_initial`: how messages and logs name a migration.
std::string label(std::int64_t version, std::string_view name);

/// `text` on one line (whitespace runs collapsed), cut to at most `max_chars` bytes at a UTF-8 boundary, with
/// `...` when cut: how error messages quote a statement or a multi-line database message.
std::string statement_preview(std::string_view text, std::size_t max_chars = 200);

enum class Direction { up, down };

/// Applies (up) or reverts (down) one file in one transaction of `session`: if the version is already in the
/// requested state, does nothing and returns false; else runs the file's statements in order and inserts (up)
/// or deletes (down) its schema_migrations row, then commits and returns true. On failure the transaction is
/// rolled back and MigrationError names the file, the failing statement and the database error.
bool apply(Session& session, const MigrationFile& file, Direction direction);

/// One line of `migrate status`.
struct MigrationStatus {
  std::int64_t version = 0;
  std::string name;
  bool applied = false;
  std::optional<util::TimePoint> applied_at;
  bool known = true;              // false: applied by a newer binary, no file here
  bool checksum_mismatch = false;  // applied, but the embedded file changed since
};

class Runner {
 public:
  /// `files` must be sorted by version and contiguous from 1 (an empty set is allowed); throws MigrationError
  /// otherwise. Keeps references to `backend` only; `files` is copied.
  Runner(Backend& backend, std::vector<MigrationFile> files, std::chrono::milliseconds lock_timeout);

  /// Every known file plus every applied version this binary does not know, sorted by version. Read-only:
  /// creates nothing, takes no lock, never throws MigrationError for an unsafe state (it shows it instead).
  std::vector<MigrationStatus> status();
  /// Highest applied version, 0 if none. Read-only.
  std::int64_t current_version();
  /// Known files not applied yet, in version order. Read-only.
  std::vector<MigrationFile> pending();
  /// Highest version this binary knows (0 without files).
  std::int64_t latest_version() const;

  /// Throws MigrationError if the database is newer than the binary or an applied file changed.
  void verify(const std::vector<AppliedMigration>& applied) const;

  /// Under the migration lock: verifies, then applies every pending version <= `to` (default: all) in order,
  /// each in its own transaction. Returns how many this call applied (others may have been applied
  /// concurrently by another process: those are skipped). Throws MigrationError.
  int up(std::optional<std::int64_t> to = std::nullopt);
  /// Under the lock: verifies, then reverts every applied version > `target` newest first. Returns the number
  /// reverted. Throws MigrationError (also for a negative target).
  int down_to(std::int64_t target);
  /// Under the lock: verifies, then reverts the `steps` newest applied versions. Throws MigrationError for
  /// steps < 1.
  int down_steps(int steps);

 private:
  std::vector<MigrationFile> pending_of(const std::vector<AppliedMigration>& applied) const;
  int revert(Session& session, const std::vector<std::int64_t>& versions_newest_first);

  Backend& backend_;
  std::vector<MigrationFile> files_;
  std::chrono::milliseconds lock_timeout_;
};

}  // namespace llmproxy::migrate
