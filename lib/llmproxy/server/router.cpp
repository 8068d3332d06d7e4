#include "llmproxy/server/router.hpp"

#include <algorithm>

namespace llmproxy::server {

void Router::add_exact(std::string path, Handler handler) { exact_.emplace_back(std::move(path), std::move(handler)); }

void Router::add_prefix(std::string prefix, Handler handler) {
  prefixes_.emplace_back(std::move(prefix), std::move(handler));
  std::stable_sort(prefixes_.begin(), prefixes_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

const Handler& Router::route(std::string_view path) const {
  static const Handler kNotFound = [](Exchange& ex) { return not_found(ex); };
  for (const auto& [p, h] : exact_) {
    if (p == path) return h;
  }
  for (const auto& [p, h] : prefixes_) {
    if (path.starts_with(p)) return h;
  }
  return kNotFound;
}

Handler Router::as_handler() const {
  return [this](Exchange& ex) { return route(ex.request.path())(ex); };
}

boost::asio::awaitable<void> not_found(Exchange& ex) {
  ex.access.route = "not_found";
  Response response = Response::error(404, "not_found", "not found");
  co_await ex.respond(std::move(response));
}

}  // namespace llmproxy::server
