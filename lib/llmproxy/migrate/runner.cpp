#include "llmproxy/migrate/runner.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <utility>

#include "llmproxy/log/log.hpp"
#include "llmproxy/util/crypto.hpp"

namespace llmproxy::migrate {
namespace {

constexpr std::string_view kSpace = " \t\r\n\f\v";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

bool is_comment_or_blank(std::string_view line) {
  const auto t = trim(line);
  return t.empty() || t.starts_with("--");
}

/// Drops leading blank/comment lines and trailing whitespace; empty if nothing but comments remain.
std::string clean_chunk(std::string_view chunk) {
  while (!chunk.empty()) {
    const auto eol = chunk.find('\n');
    const auto line = chunk.substr(0, eol);
    if (!is_comment_or_blank(line)) break;
    chunk = eol == std::string_view::npos ? std::string_view{} : chunk.substr(eol + 1);
  }
  return std::string(trim(chunk));
}

std::map<std::int64_t, const AppliedMigration*> by_version(const std::vector<AppliedMigration>& applied) {
  std::map<std::int64_t, const AppliedMigration*> out;
  for (const auto& a : applied) out.emplace(a.version, &a);
  return out;
}

std::int64_t max_version(const std::vector<AppliedMigration>& applied) {
  std::int64_t v = 0;
  for (const auto& a : applied) v = std::max(v, a.version);
  return v;
}

}  // namespace

std::vector<std::string> split_statements(std::string_view sql) {
  std::vector<std::string> out;
  std::size_t chunk_start = 0;
  auto flush = [&](std::size_t end) {
    auto stmt = clean_chunk(sql.substr(chunk_start, end - chunk_start));
    if (!stmt.empty()) out.push_back(std::move(stmt));
  };
  for (std::size_t pos = 0; pos < sql.size();) {
    auto eol = sql.find('\n', pos);
    if (eol == std::string_view::npos) eol = sql.size();
    const auto line = sql.substr(pos, eol - pos);
    // The code part of the line: up to a `--` comment that is not inside a '...' literal on this line.
    std::size_t code_end = line.size();
    bool in_literal = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\'') {
        in_literal = !in_literal;
      } else if (!in_literal && line[i] == '-' && i + 1 < line.size() && line[i + 1] == '-') {
        code_end = i;
        break;
      }
    }
    const auto code = trim(line.substr(0, code_end));
    if (!code.empty() && code.back() == ';') {
      flush(pos + line.substr(0, code_end).find_last_of(';'));
      chunk_start = std::min(eol + 1, sql.size());
    }
    pos = eol + 1;
  }
  if (chunk_start < sql.size()) flush(sql.size());
  return out;
}

std::string checksum(const MigrationFile& file) { return util::sha256_hex(file.up_sql); }

std::string label(std::int64_t version, std::string_view name) {
  return fmt::format("{:04}_{}", version, name);
}

std::string statement_preview(std::string_view text, std::size_t max_chars) {
  std::string out;
  bool space = false;
  for (const char c : text) {
    if (kSpace.find(c) != std::string_view::npos) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() <= max_chars) return out;
  std::size_t cut = max_chars;
  // Do not split a UTF-8 sequence: back up to the byte that starts one.
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  return out.substr(0, cut) + "...";
}

bool apply(Session& session, const MigrationFile& file, Direction direction) {
  const bool up = direction == Direction::up;
  const std::string name = label(file.version, file.name) + (up ? ".up.sql" : ".down.sql");
  std::unique_ptr<Transaction> tx;
  try {
    tx = session.begin();
  } catch (const MigrationError& e) {  // the lock was not obtained in time
    throw MigrationError(fmt::format("migration {}: {}", name, e.what()));
  } catch (const std::exception& e) {
    throw MigrationError(fmt::format("migration {}: cannot begin its transaction: {}", name,
                                     statement_preview(e.what(), 2000)));
  }
  // What ran when a failure happened: a statement of the file, or the bookkeeping around it.
  std::string step = "(reading schema_migrations)";
  try {
    if (tx->recorded(file.version) == up) return false;  // already in the requested state
    const auto started = std::chrono::steady_clock::now();
    for (const auto& statement : split_statements(up ? file.up_sql : file.down_sql)) {
      step = statement;
      tx->execute(statement);
    }
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    if (up) {
      step = "(recording the version / commit)";
      tx->record(AppliedMigration{file.version, file.name, checksum(file), util::now(), elapsed});
    } else {
      step = "(removing the version / commit)";
      tx->forget(file.version);
    }
    tx->commit();
    return true;
  } catch (const MigrationError&) {
    throw;
  } catch (const std::exception& e) {
    throw MigrationError(fmt::format(
        "migration {} failed and was rolled back (nothing of it was applied); statement: {}; database error: {}",
        name, statement_preview(step), statement_preview(e.what(), 2000)));
  }
}

Runner::Runner(Backend& backend, std::vector<MigrationFile> files, std::chrono::milliseconds lock_timeout)
    : backend_(backend), files_(std::move(files)), lock_timeout_(lock_timeout) {
  for (std::size_t i = 0; i < files_.size(); ++i) {
    const auto expected = static_cast<std::int64_t>(i + 1);
    if (files_[i].version != expected) {
      throw MigrationError(fmt::format(
          "migration files must be numbered contiguously from 1: expected version {:04}, found {} (check the "
          "migrations/ folder for a missing, duplicated or misnumbered file)",
          expected, label(files_[i].version, files_[i].name)));
    }
    if (files_[i].name.empty()) {
      throw MigrationError(fmt::format("migration {:04} has no name (expected NNNN_name.up.sql)", expected));
    }
  }
}

std::int64_t Runner::latest_version() const { return static_cast<std::int64_t>(files_.size()); }

std::vector<MigrationStatus> Runner::status() {
  const auto applied = backend_.read_applied();
  const auto applied_by_version = by_version(applied);
  std::vector<MigrationStatus> out;
  for (const auto& f : files_) {
    MigrationStatus s{f.version, f.name, false, std::nullopt, true, false};
    if (auto it = applied_by_version.find(f.version); it != applied_by_version.end()) {
      s.applied = true;
      s.applied_at = it->second->applied_at;
      s.checksum_mismatch = it->second->checksum != checksum(f);
    }
    out.push_back(std::move(s));
  }
  for (const auto& a : applied) {
    if (a.version < 1 || a.version > latest_version()) {
      out.push_back(MigrationStatus{a.version, a.name, true, a.applied_at, false, false});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& l, const auto& r) { return l.version < r.version; });
  return out;
}

std::int64_t Runner::current_version() { return max_version(backend_.read_applied()); }

std::vector<MigrationFile> Runner::pending() { return pending_of(backend_.read_applied()); }

std::vector<MigrationFile> Runner::pending_of(const std::vector<AppliedMigration>& applied) const {
  const auto applied_by_version = by_version(applied);
  std::vector<MigrationFile> out;
  for (const auto& f : files_) {
    if (!applied_by_version.contains(f.version)) out.push_back(f);
  }
  return out;
}

void Runner::verify(const std::vector<AppliedMigration>& applied) const {
  // Newer first: a newer database may also disagree on shared files, and "upgrade" is the real fix then.
  if (const auto db_version = max_version(applied); db_version > latest_version()) {
    throw MigrationError(fmt::format(
        "database is at version {} but this binary knows only up to {}: upgrade llm-proxy (or run the newer "
        "binary's `migrate down`)",
        db_version, latest_version()));
  }
  for (const auto& a : applied) {
    if (a.version < 1) continue;  // not ours; nothing to compare with
    const auto& f = files_[static_cast<std::size_t>(a.version - 1)];
    if (a.checksum != checksum(f)) {
      throw MigrationError(fmt::format(
          "migration {} was changed after it was applied (checksum mismatch): restore the original file or "
          "revert it with the binary that applied it (`llm-proxy migrate down`); put schema changes in a new "
          "migration instead of editing an applied one",
          label(f.version, f.name)));
    }
  }
}

int Runner::up(std::optional<std::int64_t> to) {
  if (to && (*to < 0 || *to > latest_version())) {
    throw MigrationError(fmt::format("cannot migrate up to version {}: this binary knows versions 1 to {}", *to,
                                     latest_version()));
  }
  const auto target = to.value_or(latest_version());
  auto session = backend_.begin_session(lock_timeout_);
  const auto applied = session->applied();
  verify(applied);
  int count = 0;
  for (const auto& f : pending_of(applied)) {
    if (f.version > target) break;
    const auto started = std::chrono::steady_clock::now();
    const bool done = apply(*session, f, Direction::up);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    if (done) {
      ++count;
      log::write(log::Level::info, "migration_applied",
                 {{"migration", label(f.version, f.name)}, {"version", f.version}, {"duration_ms", ms}});
    } else {
      log::write(log::Level::debug, "migration_already_applied",
                 {{"migration", label(f.version, f.name)}, {"version", f.version}});
    }
  }
  return count;
}

int Runner::down_to(std::int64_t target) {
  if (target < 0) {
    throw MigrationError(fmt::format("cannot migrate down to version {}: the lowest version is 0", target));
  }
  auto session = backend_.begin_session(lock_timeout_);
  const auto applied = session->applied();
  verify(applied);
  std::vector<std::int64_t> versions;
  for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
    if (it->version > target && it->version >= 1) versions.push_back(it->version);
  }
  return revert(*session, versions);
}

int Runner::down_steps(int steps) {
  if (steps < 1) throw MigrationError(fmt::format("cannot migrate down {} steps: use at least 1", steps));
  auto session = backend_.begin_session(lock_timeout_);
  const auto applied = session->applied();
  verify(applied);
  std::vector<std::int64_t> versions;
  for (auto it = applied.rbegin(); it != applied.rend() && static_cast<int>(versions.size()) < steps; ++it) {
    if (it->version >= 1) versions.push_back(it->version);
  }
  return revert(*session, versions);
}

int Runner::revert(Session& session, const std::vector<std::int64_t>& versions_newest_first) {
  auto sorted = versions_newest_first;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  int count = 0;
  for (const auto v : sorted) {
    // verify() guaranteed 1 <= v <= latest_version().
    const auto& f = files_[static_cast<std::size_t>(v - 1)];
    const auto started = std::chrono::steady_clock::now();
    const bool done = apply(session, f, Direction::down);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    if (done) {
      ++count;
      log::write(log::Level::info, "migration_reverted",
                 {{"migration", label(f.version, f.name)}, {"version", f.version}, {"duration_ms", ms}});
    } else {
      log::write(log::Level::debug, "migration_already_reverted",
                 {{"migration", label(f.version, f.name)}, {"version", f.version}});
    }
  }
  return count;
}

}  // namespace llmproxy::migrate
