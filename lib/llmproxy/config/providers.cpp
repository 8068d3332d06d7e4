#include "llmproxy/config/providers.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace llmproxy::config {
namespace {

[[noreturn]] void fail(std::string_view source, const std::string& key, const std::string& what) {
  throw ConfigError(std::string(source) + ": " + key + ": " + what);
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string scalar(const YAML::Node& node, std::string_view source, const std::string& key) {
  if (!node.IsScalar()) fail(source, key, "expected a string");
  return node.as<std::string>();
}

std::vector<std::string> string_list(const YAML::Node& node, std::string_view source, const std::string& key) {
  std::vector<std::string> out;
  if (!node || node.IsNull()) return out;
  if (!node.IsSequence()) fail(source, key, "expected a list of strings");
  for (std::size_t i = 0; i < node.size(); ++i) out.push_back(scalar(node[i], source, key + "[" + std::to_string(i) + "]"));
  return out;
}

Duration duration(const YAML::Node& node, std::string_view source, const std::string& key, Duration fallback) {
  if (!node || node.IsNull()) return fallback;
  auto text = scalar(node, source, key);
  auto d = parse_duration(text);
  if (!d || d->count() <= 0) fail(source, key, "invalid duration \"" + text + "\" (expected e.g. 30s, 500ms, 2m)");
  return *d;
}

int positive_int(const YAML::Node& node, std::string_view source, const std::string& key, int fallback) {
  if (!node || node.IsNull()) return fallback;
  auto text = scalar(node, source, key);
  try {
    std::size_t pos = 0;
    int v = std::stoi(text, &pos);
    if (pos == text.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  fail(source, key, "expected a non-negative integer, got \"" + text + "\"");
}

/// Splits base_url into scheme, host, port and base path.
void parse_base_url(Provider& p, std::string_view source, const std::string& key) {
  std::string url = p.base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  p.base_url = url;
  auto sep = url.find("://");
  if (sep == std::string::npos) fail(source, key, "expected http:// or https:// URL, got \"" + url + "\"");
  p.scheme = lower(url.substr(0, sep));
  if (p.scheme != "http" && p.scheme != "https") fail(source, key, "scheme must be http or https");
  std::string rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  // Query, fragment or user info would be silently mangled into the host or path: refused.
  if (authority.find('@') != std::string::npos) fail(source, key, "credentials in the URL are not supported");
  if (url.find_first_of("?# \t") != std::string::npos) fail(source, key, "expected scheme://host[:port][/path] only");
  p.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) fail(source, key, "bad IPv6 host");
    p.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') port_text = authority.substr(close + 2);
  } else {
    auto colon = authority.rfind(':');
    p.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (p.host.empty()) fail(source, key, "missing host in \"" + url + "\"");
  if (port_text.empty()) {
    p.port = p.scheme == "https" ? 443 : 80;
  } else {
    try {
      std::size_t pos = 0;
      int v = std::stoi(port_text, &pos);
      if (pos != port_text.size() || v < 1 || v > 65535) throw std::out_of_range("port");
      p.port = static_cast<std::uint16_t>(v);
    } catch (const std::exception&) {
      fail(source, key, "invalid port \"" + port_text + "\"");
    }
  }
}

Provider parse_provider(const std::string& name, const YAML::Node& node, std::string_view source) {
  const std::string base = "apis." + name;
  if (!node.IsMap()) fail(source, base, "expected a mapping");
  Provider p;
  p.name = name;
  if (!node["base_url"]) fail(source, base + ".base_url", "is required");
  p.base_url = scalar(node["base_url"], source, base + ".base_url");
  parse_base_url(p, source, base + ".base_url");
  p.allowed_endpoints = string_list(node["allowed_endpoints"], source, base + ".allowed_endpoints");
  for (auto& m : string_list(node["allowed_methods"], source, base + ".allowed_methods")) {
    p.allowed_methods.push_back(upper(m));
  }
  if (auto t = node["timeouts"]; t && !t.IsNull()) {
    if (!t.IsMap()) fail(source, base + ".timeouts", "expected a mapping");
    p.timeouts.request = duration(t["request"], source, base + ".timeouts.request", p.timeouts.request);
    p.timeouts.response_header =
        duration(t["response_header"], source, base + ".timeouts.response_header", p.timeouts.response_header);
    p.timeouts.idle_connection =
        duration(t["idle_connection"], source, base + ".timeouts.idle_connection", p.timeouts.idle_connection);
  }
  if (auto c = node["connection"]; c && !c.IsNull()) {
    if (!c.IsMap()) fail(source, base + ".connection", "expected a mapping");
    p.max_idle_conns = positive_int(c["max_idle_conns"], source, base + ".connection.max_idle_conns", p.max_idle_conns);
    p.max_idle_conns_per_host = positive_int(c["max_idle_conns_per_host"], source,
                                             base + ".connection.max_idle_conns_per_host", p.max_idle_conns_per_host);
  }
  if (auto w = node["param_whitelist"]; w && !w.IsNull()) {
    if (!w.IsMap()) fail(source, base + ".param_whitelist", "expected a mapping of field -> list of patterns");
    for (auto it = w.begin(); it != w.end(); ++it) {
      auto field = it->first.as<std::string>();
      p.param_whitelist.emplace_back(field, string_list(it->second, source, base + ".param_whitelist." + field));
    }
  }
  p.allowed_origins = string_list(node["allowed_origins"], source, base + ".allowed_origins");
  for (auto& h : string_list(node["required_headers"], source, base + ".required_headers")) {
    p.required_headers.push_back(lower(h));
  }
  return p;
}

}  // namespace

Providers parse_providers(std::string_view yaml_text, std::string_view source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(source_name) + ": invalid YAML: " + e.what());
  }
  if (!root.IsMap()) fail(source_name, "(root)", "expected a mapping with `apis`");
  Providers out;
  try {
    if (root["default_api"]) out.default_api = scalar(root["default_api"], source_name, "default_api");
    auto apis = root["apis"];
    if (!apis || !apis.IsMap() || apis.size() == 0) fail(source_name, "apis", "is required (a mapping of providers)");
    for (auto it = apis.begin(); it != apis.end(); ++it) {
      auto name = it->first.as<std::string>();
      out.apis.emplace(name, parse_provider(name, it->second, source_name));
    }
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(source_name) + ": " + e.what());
  }
  if (out.default_api.empty()) out.default_api = out.apis.begin()->first;
  if (!out.apis.contains(out.default_api)) {
    fail(source_name, "default_api", "\"" + out.default_api + "\" is not one of `apis`");
  }
  return out;
}

Providers load_providers(const std::string& path, bool& used_builtin, std::string_view builtin_base_url) {
  used_builtin = false;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    used_builtin = true;
    return builtin_providers(builtin_base_url);
  }
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read API_CONFIG_PATH=\"" + path + "\"");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_providers(ss.str(), path);
}

Providers builtin_providers(std::string_view base_url) {
  Providers providers = parse_providers(R"(default_api: openai
apis:
  openai:
    base_url: https://api.openai.com
    allowed_endpoints: [/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, /v1/moderations,
                        /v1/images/generations, /v1/images/edits, /v1/images/variations, /v1/audio/speech,
                        /v1/audio/transcriptions, /v1/audio/translations, /v1/files, /v1/responses]
    allowed_methods: [GET, POST, OPTIONS]
)",
                                        "built-in defaults");
  if (base_url != kDefaultOpenAiUrl) {
    // Set after parsing (never spliced into the YAML text), then checked by the same rules as the file's.
    Provider& openai = providers.apis.at("openai");
    openai.base_url = std::string(base_url);
    parse_base_url(openai, "OPENAI_API_URL", "base_url");
  }
  return providers;
}

const Provider& select_provider(const Providers& providers, const std::string& name) {
  auto it = providers.apis.find(name);
  if (it == providers.apis.end()) {
    std::string known;
    for (const auto& [n, _] : providers.apis) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("invalid DEFAULT_API_PROVIDER=\"" + name + "\": expected one of the configured apis (" + known +
                      ")");
  }
  return it->second;
}

bool glob_match(std::string_view pattern, std::string_view value) {
  // Iterative matcher with single-star backtracking: linear in practice, no recursion on hostile input.
  std::size_t p = 0, v = 0, star = std::string_view::npos, mark = 0;
  // A `*` is a wildcard even where the value has a literal `*` at that point: it is tested before the
  // one-character match, which would otherwise consume it without recording where to backtrack to.
  while (v < value.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = v;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == value[v])) {
      ++p;
      ++v;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace llmproxy::config
