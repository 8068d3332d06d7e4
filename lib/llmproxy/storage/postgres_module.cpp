#include "llmproxy/storage/postgres_module.hpp"

#include <dlfcn.h>

#include <array>
#include <filesystem>
#include <string>
#include <system_error>

#include "llmproxy/db/errors.hpp"

/// Defined when the driver is linked into this program; null otherwise (a weak reference).
extern "C" const llmproxy::db::postgres::Entry* llmproxy_postgres_entry() __attribute__((weak));

namespace llmproxy::storage {
namespace {

constexpr const char* kModuleName = "llm-proxy-postgres.so";

std::filesystem::path executable_dir() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : self.parent_path();
}

const db::postgres::Entry* load_module() {
  const std::filesystem::path dir = executable_dir();
  const std::array<std::filesystem::path, 2> candidates{
      dir / kModuleName, (dir / ".." / "lib" / "llm-proxy" / kModuleName).lexically_normal()};
  std::string reasons;
  for (const auto& path : candidates) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      reasons += "\n  " + path.string() + ": not found";
      continue;
    }
    // RTLD_NOW: a module that does not fit this executable fails here, at boot, not at its first query.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      reasons += "\n  " + path.string() + ": " + (why ? why : "cannot be loaded");
      continue;
    }
    using EntryFn = const db::postgres::Entry* (*)();
    auto* fn = reinterpret_cast<EntryFn>(::dlsym(handle, "llmproxy_postgres_entry"));
    const db::postgres::Entry* entry = fn ? fn() : nullptr;
    if (entry == nullptr || entry->version != db::postgres::kEntryVersion) {
      reasons += "\n  " + path.string() + ": not a PostgreSQL driver module of this llm-proxy build";
      ::dlclose(handle);
      continue;
    }
    return entry;  // kept loaded for the life of the process
  }
  throw db::Error("PostgreSQL is needed (DB_DRIVER=postgres, or a postgres:// import source), but the driver module (" +
                  std::string(kModuleName) + ") could not be loaded:" + reasons);
}

}  // namespace

const db::postgres::Entry& postgres_driver() {
  if (llmproxy_postgres_entry != nullptr) return *llmproxy_postgres_entry();
  static const db::postgres::Entry* const loaded = load_module();
  return *loaded;
}

}  // namespace llmproxy::storage
