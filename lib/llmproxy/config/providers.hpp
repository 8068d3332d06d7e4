#pragma once
/// Provider allow-lists (SPEC §5.1), `config/api_providers.yaml` in the reference format.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmproxy/config/config.hpp"

namespace llmproxy::config {

struct ProviderTimeouts {
  Duration request = std::chrono::seconds(120);          // whole non-streaming exchange
  Duration response_header = std::chrono::seconds(30);   // time to response headers
  Duration idle_connection = std::chrono::seconds(90);   // pooled keep-alive connection idle lifetime
};

struct Provider {
  std::string name;
  std::string base_url;  // as written, without trailing '/'
  std::string scheme;    // "http" or "https"
  std::string host;
  std::uint16_t port = 0;  // explicit or 80/443
  std::string base_path;   // path part of base_url ("" or "/v1"); not forwarded, like the reference (docs)
  std::vector<std::string> allowed_endpoints;  // path prefixes; empty = all
  std::vector<std::string> allowed_methods;    // upper case; empty = all
  ProviderTimeouts timeouts;
  int max_idle_conns = 100;
  int max_idle_conns_per_host = 20;
  /// Top-level JSON body field -> glob patterns (`*` any run, `?` one char). Empty = no restriction.
  std::vector<std::pair<std::string, std::vector<std::string>>> param_whitelist;
  std::vector<std::string> allowed_origins;   // exact match; empty = any origin allowed
  std::vector<std::string> required_headers;  // lower case; only "origin" has meaning
};

struct Providers {
  std::string default_api;
  std::map<std::string, Provider> apis;
};

/// Parses the YAML text. Throws ConfigError naming the file/key on invalid YAML, a missing `apis`/`base_url`,
/// a bad URL or a wrong type.
Providers parse_providers(std::string_view yaml_text, std::string_view source_name = "api_providers.yaml");

inline constexpr std::string_view kDefaultOpenAiUrl = "https://api.openai.com";

/// Loads `path`. If the file does not exist, returns the built-in OpenAI defaults at `builtin_base_url`
/// (OPENAI_API_URL) and sets `used_builtin`. Throws ConfigError for an unreadable or invalid file.
Providers load_providers(const std::string& path, bool& used_builtin,
                         std::string_view builtin_base_url = kDefaultOpenAiUrl);

/// The built-in defaults: OpenAI at `base_url` (https://api.openai.com unless OPENAI_API_URL says otherwise)
/// with the usual endpoints and methods. Throws ConfigError when `base_url` is not an http(s) URL with a host.
Providers builtin_providers(std::string_view base_url = kDefaultOpenAiUrl);

/// Selects the active provider: `name` (DEFAULT_API_PROVIDER) must exist in `providers.apis`, else ConfigError.
const Provider& select_provider(const Providers& providers, const std::string& name);

/// Glob match: `*` matches any run (including empty), `?` one character, everything else literally.
bool glob_match(std::string_view pattern, std::string_view value);

}  // namespace llmproxy::config
