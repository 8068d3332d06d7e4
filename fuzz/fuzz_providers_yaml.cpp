// fuzz_providers_yaml: config::parse_providers on arbitrary text.
//
// Properties: it returns providers or throws config::ConfigError, its documented error type (a yaml-cpp
// exception or any other escaping is a crash); what it returns is usable: the default provider exists, every
// provider has an http(s) scheme, a host, a port and upper-case methods; glob_match terminates on the patterns.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "llmproxy/config/providers.hpp"

using namespace llmproxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  config::Providers providers;
  try {
    providers = config::parse_providers(text, "fuzz.yaml");
  } catch (const config::ConfigError& e) {
    FUZZ_CHECK(std::string_view(e.what()).starts_with("fuzz.yaml"));
    return 0;
  }
  FUZZ_CHECK(!providers.apis.empty());
  const config::Provider& active = config::select_provider(providers, providers.default_api);
  FUZZ_CHECK(active.name == providers.default_api);
  for (const auto& [name, p] : providers.apis) {
    FUZZ_CHECK(p.name == name);
    FUZZ_CHECK(p.scheme == "http" || p.scheme == "https");
    FUZZ_CHECK(!p.host.empty() && p.port != 0);
    FUZZ_CHECK(p.base_url.empty() || p.base_url.back() != '/');
    FUZZ_CHECK(p.base_path.empty() || p.base_path.front() == '/');
    for (const auto& m : p.allowed_methods) {
      for (char c : m) FUZZ_CHECK(!std::islower(static_cast<unsigned char>(c)));
    }
    FUZZ_CHECK(p.timeouts.request.count() > 0 && p.timeouts.response_header.count() > 0 &&
               p.timeouts.idle_connection.count() > 0);
    for (const auto& [field, patterns] : p.param_whitelist) {
      for (const auto& pattern : patterns) {
        FUZZ_CHECK(config::glob_match(pattern, pattern));  // every character, wildcards included, matches itself
        (void)config::glob_match(pattern, field);
        FUZZ_CHECK(config::glob_match("*", pattern));
      }
    }
  }
  try {
    (void)config::select_provider(providers, std::string(text.substr(0, 16)));
  } catch (const config::ConfigError&) {
  }
  return 0;
}
