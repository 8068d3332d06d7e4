#pragma once
// Loading a Config from an in-memory environment, for the config unit tests.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "llmproxy/config/config.hpp"

namespace llmproxy::test {

using Env = std::map<std::string, std::string, std::less<>>;

/// An EnvLookup reading `env` (which must outlive it).
inline config::EnvLookup lookup(const Env& env) {
  return [&env](std::string_view name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

inline config::Config load(const Env& env) { return config::load(lookup(env)); }

/// The ConfigError message load() throws for `env`, or "<no error>".
inline std::string load_error(const Env& env) {
  try {
    load(env);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace llmproxy::test
