#pragma once
/// Maps a request path to a handler: exact paths first, then the longest matching prefix, else JSON 404.
#include <string>
#include <utility>
#include <vector>

#include "llmproxy/server/exchange.hpp"

namespace llmproxy::server {

class Router {
 public:
  /// `path` matches exactly (query ignored). Configure before the server starts; read-only afterwards.
  void add_exact(std::string path, Handler handler);
  /// `prefix` matches paths starting with it (e.g. "/v1/").
  void add_prefix(std::string prefix, Handler handler);
  /// The handler for `path`, or the 404 handler.
  const Handler& route(std::string_view path) const;
  /// A Handler that dispatches through this router (the router must outlive it).
  Handler as_handler() const;

 private:
  std::vector<std::pair<std::string, Handler>> exact_;
  std::vector<std::pair<std::string, Handler>> prefixes_;  // longest first
};

/// Answers 404 `{"error":"not found","code":"not_found"}`.
boost::asio::awaitable<void> not_found(Exchange& ex);

}  // namespace llmproxy::server
