#pragma once
/// An HTTP/1.1 response parser that writes header fields straight into server::Headers and body bytes straight
/// into a caller-chosen string, so a response costs no intermediate Beast message.
#include <boost/beast/http/basic_parser.hpp>

#include <cstdint>
#include <string>

#include "llmproxy/server/http_types.hpp"

namespace llmproxy::upstream::detail {

namespace beast = boost::beast;
namespace http = beast::http;

class ResponseParser final : public http::basic_parser<false> {
 public:
  /// Fields are appended to `headers`, which must outlive the parser.
  explicit ResponseParser(server::Headers& headers) : headers_(headers) {}

  int status() const noexcept { return status_; }
  /// Where decoded body bytes are appended from now on (chunk framing removed). Must be set before any body
  /// byte is parsed.
  void sink(std::string* out) noexcept { sink_ = out; }

 private:
  // Beast calls this only for request parsers.
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int, beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override { status_ = code; }
  void on_field_impl(http::field, beast::string_view name, beast::string_view value, beast::error_code&) override {
    headers_.add({name.data(), name.size()}, {value.data(), value.size()});
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    sink_->append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    sink_->append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  server::Headers& headers_;
  std::string* sink_ = nullptr;
  int status_ = 0;
};

}  // namespace llmproxy::upstream::detail
