#include "llmproxy/proxy/params.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "llmproxy/config/providers.hpp"
#include "llmproxy/server/http_types.hpp"

namespace llmproxy::proxy {

using server::iequals;
using server::trim_ows;

namespace {

const std::vector<std::string>* patterns_for(const ParamWhitelist& whitelist, std::string_view field) {
  for (const auto& [name, patterns] : whitelist) {
    if (name == field) return &patterns;
  }
  return nullptr;
}

/// "" when `value` matches one of `patterns`, else the reason.
std::string judge(std::string_view field, const std::vector<std::string>& patterns, std::string_view value) {
  if (std::any_of(patterns.begin(), patterns.end(),
                  [&](const std::string& pattern) { return config::glob_match(pattern, value); })) {
    return {};
  }
  return "value \"" + std::string(value) + "\" is not allowed for parameter \"" + std::string(field) + "\"";
}

// ---- JSON -----------------------------------------------------------------------------------------------

/// SAX handler: follows the nesting depth, judges the values of whitelisted top-level keys, and stops the
/// parse (returns false) at the first problem. Holds no part of the document beyond the current key.
class WhitelistSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit WhitelistSax(const ParamWhitelist& whitelist) : whitelist_(whitelist) {}

  std::string problem;

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t) override { return scalar("a number"); }
  bool number_unsigned(number_unsigned_t) override { return scalar("a number"); }
  bool number_float(number_float_t, const string_t&) override { return scalar("a number"); }
  bool binary(binary_t&) override { return scalar("binary"); }  // not produced by the JSON format
  bool string(string_t& value) override {
    if (depth_ == 0) return not_an_object();
    if (depth_ == 1 && patterns_ != nullptr) {
      problem = judge(key_, *patterns_, value);
      patterns_ = nullptr;
    }
    return problem.empty();
  }
  bool start_object(std::size_t) override { return open(/*object=*/true); }
  bool start_array(std::size_t) override { return open(/*object=*/false); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& name) override {
    if (depth_ == 1) {
      patterns_ = patterns_for(whitelist_, name);
      if (patterns_ != nullptr) key_ = name;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    if (problem.empty()) problem = "the request body is not valid JSON";
    return false;
  }

 private:
  bool not_an_object() {
    problem = "the request body must be a JSON object";
    return false;
  }

  bool scalar(const char* kind) {
    if (depth_ == 0) return not_an_object();
    if (depth_ == 1 && patterns_ != nullptr) {
      problem = "parameter \"" + key_ + "\" must be a string, not " + kind;
      return false;
    }
    return true;
  }

  bool open(bool object) {
    if (depth_ == 0 && !object) return not_an_object();
    if (depth_ == 1 && patterns_ != nullptr) {
      problem = "parameter \"" + key_ + "\" must be a string";
      return false;
    }
    if (++depth_ > kMaxJsonDepth) {
      problem = "the request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    return true;
  }

  bool close() {
    --depth_;
    if (depth_ == 1) patterns_ = nullptr;
    return true;
  }

  const ParamWhitelist& whitelist_;
  std::size_t depth_ = 0;
  const std::vector<std::string>* patterns_ = nullptr;  // set between a whitelisted top-level key and its value
  std::string key_;
};

std::string check_json(const ParamWhitelist& whitelist, std::string_view body) {
  WhitelistSax sax(whitelist);
  const bool ok = nlohmann::json::sax_parse(body.begin(), body.end(), &sax, nlohmann::json::input_format_t::json,
                                            /*strict=*/true, /*ignore_comments=*/false);
  if (ok) return {};
  return sax.problem.empty() ? "the request body is not valid JSON" : sax.problem;
}

// ---- multipart/form-data (RFC 7578, RFC 2046 §5.1.1) ------------------------------------------------------

/// Iterates the `; name=value` parameters after the first `;` of a header value, calling fn(name, value)
/// with quotes removed (a backslash escapes the next character inside quotes). Returns false when malformed.
/// Values with escapes are returned as written minus the quotes (good enough: names compared are plain tokens).
template <typename Fn>
bool for_each_parameter(std::string_view value, Fn fn) {
  std::size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;  // past ';'
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    if (i == value.size()) break;
    const std::size_t eq = value.find('=', i);
    if (eq == std::string_view::npos) return false;
    const std::string_view name = trim_ows(value.substr(i, eq - i));
    i = eq + 1;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    std::string_view param;
    if (i < value.size() && value[i] == '"') {
      const std::size_t start = ++i;
      while (i < value.size() && value[i] != '"') i += value[i] == '\\' ? 2 : 1;
      if (i >= value.size()) return false;  // unterminated quoted string
      param = value.substr(start, i - start);
      ++i;  // past the closing quote
      while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
      if (i < value.size() && value[i] != ';') return false;
    } else {
      const std::size_t end = value.find(';', i);
      param = trim_ows(value.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
      i = end;
      if (i == std::string_view::npos) {
        fn(name, param);
        break;
      }
    }
    fn(name, param);
  }
  return true;
}

std::optional<std::string_view> boundary_of(std::string_view content_type) {
  std::optional<std::string_view> boundary;
  if (!for_each_parameter(content_type, [&](std::string_view n, std::string_view v) {
        if (iequals(n, "boundary")) boundary = v;
      })) {
    return std::nullopt;
  }
  // RFC 2046: 1 to 70 characters.
  if (!boundary || boundary->empty() || boundary->size() > 70) return std::nullopt;
  return boundary;
}

/// The form-field name of a part from its header block (lines separated by CRLF), or nullopt when the part has
/// no `Content-Disposition: form-data` header with a name.
std::optional<std::string_view> field_name(std::string_view head) {
  std::optional<std::string_view> name;
  while (!head.empty()) {
    const std::size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;  // not a header line
    if (!iequals(trim_ows(line.substr(0, colon)), "Content-Disposition")) continue;
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (value.size() < 9 || !iequals(trim_ows(value.substr(0, value.find(';'))), "form-data")) return std::nullopt;
    bool ok = for_each_parameter(value, [&](std::string_view n, std::string_view v) {
      if (iequals(n, "name")) name = v;
    });
    if (!ok) return std::nullopt;
  }
  return name;
}

std::string check_multipart(const ParamWhitelist& whitelist, std::string_view content_type, std::string_view body) {
  static const std::string kMalformed = "the multipart/form-data body is malformed";
  const std::optional<std::string_view> boundary = boundary_of(content_type);
  if (!boundary) return "the multipart/form-data Content-Type has no valid boundary";
  const std::string delimiter = "--" + std::string(*boundary);
  const std::string next_delimiter = "\r\n" + delimiter;

  // The preamble (ignored) ends with the first delimiter, at the very start or after a CRLF.
  std::size_t pos;
  if (body.starts_with(delimiter)) {
    pos = delimiter.size();
  } else {
    pos = body.find(next_delimiter);
    if (pos == std::string_view::npos) return kMalformed;
    pos += next_delimiter.size();
  }
  for (;;) {
    // After a delimiter: "--" closes the body; otherwise optional transport padding, then CRLF.
    if (body.substr(pos, 2) == "--") return {};
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") return kMalformed;
    pos += 2;
    std::size_t head_end;
    if (body.substr(pos, 2) == "\r\n") {
      head_end = pos;  // a part without headers
    } else {
      head_end = body.find("\r\n\r\n", pos);
      if (head_end == std::string_view::npos) return kMalformed;
    }
    const std::string_view head = body.substr(pos, head_end - pos);
    const std::size_t content_start = head_end + (head_end == pos ? 2 : 4);
    const std::size_t content_end = body.find(next_delimiter, content_start);
    if (content_end == std::string_view::npos) return kMalformed;  // no closing delimiter
    const std::optional<std::string_view> name = field_name(head);
    if (!name) return "a multipart/form-data part has no Content-Disposition form-data name";
    if (const auto* patterns = patterns_for(whitelist, *name)) {
      std::string problem = judge(*name, *patterns, body.substr(content_start, content_end - content_start));
      if (!problem.empty()) return problem;
    }
    pos = content_end + next_delimiter.size();
  }
}

}  // namespace

std::string check_params(const ParamWhitelist& whitelist, std::string_view content_type, std::string_view body) {
  if (whitelist.empty() || body.empty()) return {};
  const std::string_view media_type = trim_ows(content_type.substr(0, content_type.find(';')));
  if (iequals(media_type, "multipart/form-data")) return check_multipart(whitelist, content_type, body);
  return check_json(whitelist, body);
}

}  // namespace llmproxy::proxy
