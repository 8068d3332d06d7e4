// The param_whitelist body check: bounded, top-level only, fails closed; multipart on its form fields
// (SPEC §5.5 "Cost before trust").
#include <catch2/catch.hpp>

#include <string>

#include "llmproxy/proxy/params.hpp"

using llmproxy::proxy::check_params;
using llmproxy::proxy::kMaxJsonDepth;
using llmproxy::proxy::ParamWhitelist;

namespace {

const ParamWhitelist kModels{{"model", {"gpt-4o", "gpt-4o-*"}}};
constexpr const char* kJson = "application/json";

std::string nested(std::size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

std::string multipart(const std::string& boundary, const std::string& model, const std::string& name = "model") {
  return "--" + boundary + "\r\n"
         "Content-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
         "Content-Type: audio/wav\r\n\r\n"
         "RIFF\r\n--not-the-boundary\r\nbytes\r\n"
         "--" + boundary + "\r\n"
         "Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
         model + "\r\n"
         "--" + boundary + "--\r\n";
}

}  // namespace

TEST_CASE("params: JSON objects are judged on their top-level whitelisted fields", "[proxy][params]") {
  CHECK(check_params(kModels, kJson, R"({"model":"gpt-4o","messages":[{"model":"other"}]})").empty());
  CHECK(check_params(kModels, kJson, R"({"model":"gpt-4o-mini"})").empty());
  CHECK(check_params(kModels, kJson, R"({"messages":[]})").empty());          // field absent: nothing to judge
  CHECK(check_params(kModels, "", R"( {"model" : "gpt-4o"} )").empty());      // no Content-Type: read as JSON
  CHECK(check_params(kModels, kJson, "").empty());                            // no body (GET)
  CHECK(check_params({}, kJson, "[[[[not json").empty());                     // no whitelist
  CHECK_FALSE(check_params(kModels, kJson, R"({"model":"gpt-5"})").empty());
  CHECK_FALSE(check_params(kModels, kJson, R"({"model":"gpt-4o","model":"gpt-5"})").empty());  // every occurrence
  CHECK_FALSE(check_params(kModels, kJson, R"({"nested":{"a":1},"model":"o1"})").empty());
  for (const char* not_string : {R"({"model":42})", R"({"model":null})", R"({"model":true})", R"({"model":1.5})",
                                 R"({"model":["gpt-4o"]})", R"({"model":{"x":"gpt-4o"}})"}) {
    INFO(not_string);
    CHECK_THAT(check_params(kModels, kJson, not_string), Catch::Contains("must be a string"));
  }
}

TEST_CASE("params: a body that cannot be checked is refused", "[proxy][params]") {
  for (const char* body : {"[]", R"(["gpt-4o"])", "\"gpt-4o\"", "42", "null", "not json", "{", R"({"model":"gpt-4o"} x)",
                           R"({"model":"gpt-4o"}{})", " ", "{\"model\":\"\xff\"}"}) {
    INFO(body);
    CHECK_FALSE(check_params(kModels, kJson, body).empty());
  }
}

TEST_CASE("params: nesting is bounded", "[proxy][params]") {
  // The top-level object is depth 1.
  const std::string at_limit = "{\"a\":" + nested(kMaxJsonDepth - 1) + ",\"model\":\"gpt-4o\"}";
  CHECK(check_params(kModels, kJson, at_limit).empty());
  const std::string too_deep = "{\"a\":" + nested(kMaxJsonDepth) + ",\"model\":\"gpt-4o\"}";
  CHECK_THAT(check_params(kModels, kJson, too_deep), Catch::Contains("deeper than 64"));
  // A 10 MB "[[[[..." is refused at once (the parse stops at depth 65, nothing is built).
  CHECK_FALSE(check_params(kModels, kJson, std::string(10 << 20, '[')).empty());
  CHECK_FALSE(check_params(kModels, kJson, "{\"a\":" + std::string(10 << 20, '{')).empty());
}

TEST_CASE("params: multipart bodies are judged on their form fields", "[proxy][params]") {
  const std::string type = "multipart/form-data; boundary=----xyz123";
  CHECK(check_params(kModels, type, multipart("----xyz123", "gpt-4o-mini")).empty());
  CHECK(check_params(kModels, "Multipart/Form-Data; charset=utf-8; Boundary=\"----xyz123\"",
                     multipart("----xyz123", "gpt-4o"))
            .empty());
  CHECK(check_params(kModels, type, "preamble\r\n" + multipart("----xyz123", "gpt-4o")).empty());
  CHECK(check_params(kModels, type, multipart("----xyz123", "whisper-1", "language")).empty());  // no model field
  CHECK_THAT(check_params(kModels, type, multipart("----xyz123", "whisper-1")),
             Catch::Contains("\"whisper-1\" is not allowed"));
  // The name parameter, not filename, names the field.
  const std::string tricky = "--b\r\nContent-Disposition: form-data; filename=\"model\"; name=\"model\"\r\n\r\n"
                             "whisper-1\r\n--b--";
  CHECK_FALSE(check_params(kModels, "multipart/form-data; boundary=b", tricky).empty());
}

TEST_CASE("params: malformed multipart is refused", "[proxy][params]") {
  const std::string good = multipart("b", "gpt-4o");
  CHECK(check_params(kModels, "multipart/form-data; boundary=b", good).empty());
  for (const char* type : {"multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary",
                           "multipart/form-data; boundary=\"b"}) {
    INFO(type);
    CHECK_FALSE(check_params(kModels, type, good).empty());
  }
  const std::string type = "multipart/form-data; boundary=b";
  for (const std::string& body :
       {std::string("no delimiter at all"), good.substr(0, good.size() - 12),  // no closing delimiter
        std::string("--b\r\nContent-Disposition: form-data; name=\"model\"\r\n"),            // headers never end
        std::string("--b\r\nX: y\r\n\r\ngpt-4o\r\n--b--"),                                    // no disposition
        std::string("--b\r\nContent-Disposition: attachment; name=\"model\"\r\n\r\nx\r\n--b--"),
        std::string("--bxx\r\n\r\n--b--"), std::string("--b"), std::string("--b\r\n")}) {
    INFO(body);
    CHECK_FALSE(check_params(kModels, type, body).empty());
  }
}

TEST_CASE("params: arbitrary bytes never throw", "[proxy][params]") {
  const std::string seeds[] = {R"({"model":"gpt-4o"})", multipart("b", "gpt-4o")};
  for (const auto& seed : seeds) {
    for (std::size_t pos = 0; pos < seed.size(); ++pos) {
      for (int b : std::initializer_list<int>{0, '"', '\\', '{', '[', ']', '}', '-', '\r', '\n', ';', '=', 0xff}) {
        std::string s = seed;
        s[pos] = static_cast<char>(b);
        CHECK_NOTHROW(check_params(kModels, "multipart/form-data; boundary=b", s));
        CHECK_NOTHROW(check_params(kModels, kJson, s));
        CHECK_NOTHROW(check_params(kModels, kJson, s.substr(0, pos)));
        CHECK_NOTHROW(check_params(kModels, "multipart/form-data; boundary=b", s.substr(0, pos)));
      }
    }
  }
}
