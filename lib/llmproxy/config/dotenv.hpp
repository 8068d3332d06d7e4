#pragma once
/// dotenv files for `llm-proxy server --env FILE` (the reference's flag, SPEC §7.4).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmproxy/config/config.hpp"

namespace llmproxy::config {

/// Parses the text of a dotenv file into KEY/VALUE pairs in file order (a later duplicate wins when looked up):
///  - blank lines and lines starting with `#` are skipped; an optional `export ` prefix is allowed;
///  - `KEY=VALUE`, KEY is [A-Za-z_][A-Za-z0-9_.]*, spaces around `=` are ignored;
///  - `'single quoted'` values are literal; `"double quoted"` values understand \n \r \t \" \\ (one line);
///    after the closing quote only spaces and a `# comment` may follow;
///  - unquoted values are trimmed, and a `#` preceded by a space or tab starts a comment (`10MB   # max`);
///  - no `${VAR}` expansion: values are taken literally.
/// Throws ConfigError naming `source` and the line number (never the value: it may be a secret).
std::vector<std::pair<std::string, std::string>> parse_dotenv(std::string_view text, std::string_view source);

/// Reads and parses `path`. Throws ConfigError when it cannot be read or is invalid.
std::vector<std::pair<std::string, std::string>> load_dotenv(const std::string& path);

}  // namespace llmproxy::config
