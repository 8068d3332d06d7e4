#include "llmproxy/proxy/proxy.hpp"

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>

#include "llmproxy/auth/token_service.hpp"
#include "llmproxy/cache/policy.hpp"
#include "llmproxy/events/event_log.hpp"
#include "llmproxy/log/log.hpp"
#include "llmproxy/metrics/metrics.hpp"
#include "llmproxy/proxy/detail/response_cache.hpp"
#include "llmproxy/proxy/headers.hpp"
#include "llmproxy/proxy/params.hpp"
#include "llmproxy/proxy/target.hpp"
#include "llmproxy/upstream/circuit_breaker.hpp"
#include "llmproxy/upstream/client.hpp"
#include "llmproxy/usage/scanner.hpp"
#include "llmproxy/util/time.hpp"

namespace llmproxy::proxy {

namespace net = boost::asio;
using server::Exchange;
using server::Headers;
using server::iequals;
using server::Response;
using detail::CacheState;
using detail::CacheUse;

namespace {

/// Headers a browser script may read on a `/v1` answer: our ids, the cache's, and what the SDKs retry on.
constexpr std::string_view kExposedHeaders =
    "X-Request-ID, X-Correlation-ID, X-Proxy, Cache-Status, X-PROXY-CACHE, X-PROXY-CACHE-KEY, Age, Retry-After";

/// An api_error() with CORS for `origin` when it is allowed (empty: no CORS).
Response api_error_for(std::string_view cors_origin, int status, std::string_view code, std::string_view message) {
  Response r = api_error(status, code, message);
  if (!cors_origin.empty()) add_cors_headers(r.headers, cors_origin);
  return r;
}

/// What the usage book and the event log learn about one `/v1` request (SPEC §14), filled in as the pipeline
/// runs and handed over when it ends, whichever way it ends (the destructor: every co_return of handle()).
class RequestRecord {
 public:
  /// `body_bytes`: what the event log keeps of each body (0: none). One byte more is captured, so the event log
  /// can tell a body it cut from one that fit.
  /// `deps`: null while the application starts (nothing is recorded then).
  RequestRecord(Exchange& ex, const Deps* deps, std::size_t body_bytes)
      : ex_(ex),
        deps_(deps),
        at_(util::now()),
        // Only the event log reads the duration: the clock is not read for nothing.
        start_(deps != nullptr && deps->events != nullptr ? std::chrono::steady_clock::now()
                                                          : std::chrono::steady_clock::time_point{}),
        capture_bytes_(body_bytes == 0 || body_bytes == SIZE_MAX ? body_bytes : body_bytes + 1) {}
  RequestRecord(const RequestRecord&) = delete;
  RequestRecord& operator=(const RequestRecord&) = delete;
  ~RequestRecord() {
    try {
      finish();
    } catch (const std::exception& e) {
      log::write(log::Level::error, "usage_record_failed", {{"request_id", ex_.request.request_id}, {"error", e.what()}});
    }
  }

  /// The token (set_token()) was authorized (or answered from the cache): its usage is recorded at the end,
  /// for the project in the exchange's access record.
  void authorized(const auth::Authorization& auth, bool cache_hit) {
    counted_ = true;
    cache_hit_ = cache_hit;
    has_budget_ = auth.has_budget;
  }
  /// The token the request named, once known (also for a refused one).
  void set_token(std::string token_id) { token_id_ = std::move(token_id); }
  void set_cache_status(std::string status) { cache_status_ = std::move(status); }

  /// Starts reading an answer body with this Content-Type (JSON or an event stream; others are not read).
  void expect_body(std::string_view content_type, usage::Read read = usage::Read::usage_and_model) {
    if (content_type.starts_with("text/event-stream")) {
      scanner_.emplace(usage::Format::sse, read);
    } else if (content_type.find("json") != std::string_view::npos) {
      scanner_.emplace(usage::Format::json, read);
    }
  }
  /// The next bytes of the answer body.
  void body(std::string_view piece) {
    if (scanner_) scanner_->feed(piece);
    if (capture_bytes_ > 0 && response_body_.size() < capture_bytes_) {
      response_body_.append(piece.substr(0, capture_bytes_ - response_body_.size()));
    }
  }

  /// Records the token's usage now (once; the destructor does it otherwise). Called with the whole answer body
  /// read and before its last bytes go to the client, so a client that sends its next request once it has the
  /// answer is judged with this one's usage (budgets are checked from memory on the next request).
  void record_usage() {
    if (usage_recorded_ || deps_ == nullptr) return;
    usage_recorded_ = true;
    const usage::Usage used = usage_read();
    const std::string& model = model_read();
    if (counted_) {
      auth::UsageRecord r;
      r.token_id = token_id_;
      r.project_id = ex_.access.project_id;
      r.model = model;
      // A cached answer's tokens were spent once, upstream, when it was stored: a hit costs none.
      if (!cache_hit_) {
        r.prompt_tokens = used.prompt_tokens;
        r.completion_tokens = used.completion_tokens;
      }
      r.cache_hit = cache_hit_;
      r.has_budget = has_budget_;
      r.at = at_;
      deps_->tokens->record_usage(r);
      if (r.prompt_tokens > 0 || r.completion_tokens > 0) {
        deps_->metrics->count_llm_tokens(model, static_cast<std::uint64_t>(r.prompt_tokens),
                                         static_cast<std::uint64_t>(r.completion_tokens));
      }
    }
  }

 private:
  /// What the answer body said so far: its usage, and its model ("" if none).
  usage::Usage usage_read() const { return scanner_ ? scanner_->usage() : usage::Usage{}; }
  const std::string& model_read() const {
    static const std::string kNoModel;
    return scanner_ ? scanner_->model() : kNoModel;
  }

  void finish() {
    if (deps_ == nullptr) return;
    record_usage();
    if (deps_->events == nullptr) return;
    const usage::Usage used = usage_read();
    const std::string& model = model_read();
    events::RequestEvent e;
    e.time = at_;
    e.request_id = ex_.request.request_id;
    e.project_id = ex_.access.project_id;
    e.token_id = token_id_;
    e.method = ex_.request.method;
    e.path = ex_.request.target.substr(0, ex_.request.target.find('?'));
    e.model = model;
    e.cache_status = cache_status_;
    e.status = ex_.status();
    e.duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
    e.upstream_ms = ex_.access.upstream_ms;
    if (used.present) e.usage = used;
    if (capture_bytes_ > 0) {
      e.request_body = ex_.request.body.substr(0, capture_bytes_);
      e.response_body = std::move(response_body_);
    }
    deps_->events->push(std::move(e));
  }

  Exchange& ex_;
  const Deps* deps_ = nullptr;
  const util::TimePoint at_;
  const std::chrono::steady_clock::time_point start_;
  const std::size_t capture_bytes_;
  std::string token_id_, cache_status_;
  bool counted_ = false;
  bool usage_recorded_ = false;
  bool cache_hit_ = false;
  bool has_budget_ = false;
  std::optional<usage::Scanner> scanner_;
  std::string response_body_;
};

/// Runs the pipeline for one request. Holds references only to state that outlives the server.
class Pipeline {
 public:
  Pipeline(const Options& options, const lifecycle::Published<const Deps>& deps)
      : options_(options), deps_(deps), host_header_(host_header_of(options.provider)) {}

// The same GCC 12 false positive as forward()'s (see there).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
  net::awaitable<void> handle(Exchange& ex) {
    ex.access.route = "proxy";
    const std::string_view origin = ex.request.headers.get("Origin");
    // The Origin echoed on every answer below (upstream's and our own errors), when it is allowed.
    const std::string_view cors = origin_allowed(options_.provider, origin) ? origin : std::string_view{};
    // Every response is built into a named variable before co_await: GCC 12 mishandles some temporaries
    // (conditional ones in particular) inside co_await expressions.
    const Deps* deps = deps_.get();
    RequestRecord record(ex, deps, options_.event_body_bytes);
    NormalisedTarget target = normalise_target(ex.request.target);
    std::optional<Response> answer = check_request(ex, target, origin, cors);
    if (!answer && deps == nullptr) {
      answer = api_error_for(cors, 503, "service_unavailable", "the server is starting, try again shortly");
    }
    if (answer) {
      co_await ex.respond(std::move(*answer));
      co_return;
    }
    // The body is looked at only once the token and its project were accepted, and before the quota counts it.
    std::function<std::string()> admit = [this, &ex] { return params_problem(ex.request); };
    // The response cache is looked up once the token, its project and the body are accepted, and before the
    // quota counts the request: a hit consumes no quota (SPEC §13).
    CacheState cache;
    auth::TokenService::CachedAnswer cached;
    if (deps->cache != nullptr) {
      const bool eligible = cache::request_may_use_cache(ex.request.method, ex.request.headers,
                                                         ex.request.body.size(), options_.cache.max_object_bytes);
      cache.use = eligible ? CacheUse::miss : CacheUse::bypass;
      if (eligible) {
        cached = [this, &ex, deps, &target, &cache](const std::string& project_id) {
          return look_up(ex, *deps, target, project_id, cache);
        };
      }
    }
    auto auth = co_await deps->tokens->authorize(ex.request.headers.get("Authorization"), std::move(admit),
                                                 std::move(cached));
    // Moved out: below, `auth` is read only for its outcome, message, budget flag and API key.
    ex.access.token_hint = std::move(auth.token_hint);
    ex.access.project_id = std::move(auth.project_id);
    record.set_token(std::move(auth.token_id));  // for the event log, whatever the outcome
    if (auth.outcome == auth::Outcome::served_from_cache) {
      deps->metrics->cache_hits.fetch_add(1, std::memory_order_relaxed);
      record.authorized(auth, true);
      record.set_cache_status("hit");
      // Read for its model only: a hit costs no LLM tokens.
      record.expect_body(cache.entry->headers.get("Content-Type"), usage::Read::model_only);
      record.body(cache.entry->body);
      Response hit = detail::answer_from_entry(*cache.entry, ex.request, cache.key, detail::now_ms(), false);
      if (!cors.empty()) add_cors_headers(hit.headers, cors);
      co_await ex.respond(std::move(hit));
      co_return;
    }
    if (auth.outcome == auth::Outcome::authorized && cache.use == CacheUse::bypass) {
      deps->metrics->cache_bypass.fetch_add(1, std::memory_order_relaxed);
    }
    if (auth.outcome != auth::Outcome::authorized) {
      if (auth.outcome == auth::Outcome::service_unavailable) deps->metrics->db_errors.fetch_add(1, std::memory_order_relaxed);
      const auto [status, code] = denial(auth.outcome);
      answer = api_error_for(cors, status, code, auth.message);
      if (auth.outcome == auth::Outcome::rate_limited) {
        answer->headers.set("Retry-After", std::to_string(auth.retry_after.count()));
      }
    } else {
      // Counted as a request by authorize (the quota, or the usage book): usage_daily counts it too, even if
      // the circuit breaker refuses it below.
      record.authorized(auth, false);
      if (!deps->breaker->allow()) {
        answer = api_error_for(cors, 503, "upstream_unavailable", "the upstream provider is failing; circuit is open");
      }
    }
    if (answer) {
      co_await ex.respond(std::move(*answer));
      co_return;
    }
    record.set_cache_status(std::string(cache_use_name(cache.use)));
    co_await forward(ex, *deps, target, auth.api_key, cors, cache, record);
  }
#pragma GCC diagnostic pop

 private:
  static std::pair<int, const char*> denial(auth::Outcome o) {
    switch (o) {
      case auth::Outcome::invalid_token: return {401, "invalid_token"};
      case auth::Outcome::token_not_found: return {401, "token_not_found"};
      case auth::Outcome::token_inactive: return {401, "token_inactive"};
      case auth::Outcome::token_expired: return {401, "token_expired"};
      case auth::Outcome::project_inactive: return {403, "project_inactive"};
      case auth::Outcome::rate_limit_exceeded: return {429, "rate_limit_exceeded"};
      case auth::Outcome::rate_limited: return {429, "rate_limit_exceeded"};
      case auth::Outcome::token_budget_exceeded: return {429, "token_budget_exceeded"};
      case auth::Outcome::rate_limit_unavailable: return {503, "rate_limit_unavailable"};
      case auth::Outcome::not_admitted: return {400, "param_not_allowed"};
      case auth::Outcome::service_unavailable: return {503, "service_unavailable"};
      case auth::Outcome::authorized:
      case auth::Outcome::served_from_cache: break;
    }
    return {500, "internal_error"};
  }

  /// The event log's name of what the cache did.
  static std::string_view cache_use_name(CacheUse use) {
    switch (use) {
      case CacheUse::off: return "";
      case CacheUse::bypass: return "bypass";
      case CacheUse::unavailable: return "unavailable";
      case CacheUse::miss:
      case CacheUse::vary_miss: return "miss";
      case CacheUse::revalidate: return "revalidate";
      case CacheUse::hit: return "hit";
    }
    return "";
  }

  /// The checks that need no state, in pipeline order: target, preflight, method, endpoint, origin.
  /// Returns the response to send instead of forwarding, if any.
  std::optional<Response> check_request(const Exchange& ex, const NormalisedTarget& target, std::string_view origin,
                                        std::string_view cors) const {
    const auto& p = options_.provider;
    if (!target.ok()) return api_error_for(cors, 400, "invalid_path", target.error);
    if (iequals(ex.request.method, "OPTIONS")) {
      Response r;
      r.status = 204;
      if (!cors.empty()) add_preflight_headers(r.headers, ex, cors);
      return r;
    }
    if (!p.allowed_methods.empty() &&
        std::none_of(p.allowed_methods.begin(), p.allowed_methods.end(),
                     [&](const std::string& m) { return iequals(m, ex.request.method); })) {
      return api_error_for(cors, 405, "method_not_allowed", "method " + ex.request.method + " is not allowed");
    }
    const std::string& path = target.path;
    if (!p.allowed_endpoints.empty() &&
        std::none_of(p.allowed_endpoints.begin(), p.allowed_endpoints.end(),
                     [&](const std::string& prefix) { return endpoint_matches(prefix, path); })) {
      return api_error_for(cors, 404, "endpoint_not_found", "endpoint " + path + " is not allowed");
    }
    if (origin.empty() &&
        std::find(p.required_headers.begin(), p.required_headers.end(), "origin") != p.required_headers.end()) {
      return api_error(400, "origin_required", "an Origin header is required");
    }
    if (!origin.empty() && cors.empty()) {
      return api_error(403, "origin_not_allowed", "origin " + std::string(origin) + " is not allowed");
    }
    return std::nullopt;
  }

  void add_preflight_headers(Headers& h, const Exchange& ex, std::string_view origin) const {
    add_cors_headers(h, origin);
    std::string methods;
    for (const auto& m : options_.provider.allowed_methods) methods += (methods.empty() ? "" : ", ") + m;
    h.set("Access-Control-Allow-Methods", methods.empty() ? "GET, POST, OPTIONS" : methods);
    auto requested = ex.request.headers.get("Access-Control-Request-Headers");
    h.set("Access-Control-Allow-Headers",
          requested.empty() ? std::string_view("Authorization, Content-Type, OpenAI-Organization, OpenAI-Beta")
                            : requested);
    h.set("Access-Control-Max-Age", "600");
  }

  /// The cache lookup for an eligible request of `project_id`: true when the stored answer may be served as is
  /// (then `state` holds it). A backend failure is a bypass (forwarded without the cache).
  net::awaitable<bool> look_up(const Exchange& ex, const Deps& deps, const NormalisedTarget& target,
                               std::string project_id, CacheState& state) const {
    state.key = cache::key(project_id, ex.request.method, target.target(), ex.request.headers, ex.request.body);
    cache::Lookup found = co_await deps.cache->get(state.key);
    if (found.status == cache::LookupStatus::error) {
      state.use = CacheUse::unavailable;
      deps.metrics->cache_bypass.fetch_add(1, std::memory_order_relaxed);
      co_return false;
    }
    if (found.status != cache::LookupStatus::hit || !found.entry) {
      state.use = CacheUse::miss;
    } else if (!cache::vary_matches(*found.entry, ex.request.headers)) {
      state.use = CacheUse::vary_miss;
    } else {
      state.entry = std::move(found.entry);
      state.use = cache::wants_revalidation(ex.request.headers) ? CacheUse::revalidate : CacheUse::hit;
    }
    if (state.use == CacheUse::hit) co_return true;
    deps.metrics->cache_misses.fetch_add(1, std::memory_order_relaxed);
    co_return false;
  }

  /// Stores `entry` (awaited, bounded by the backend's timeout, so "stored" is true when the client reads it).
  static net::awaitable<bool> store(const Deps& deps, const CacheState& state, std::shared_ptr<cache::Entry> entry) {
    const bool stored = co_await deps.cache->put(state.key, std::move(entry));
    if (stored) deps.metrics->cache_stores.fetch_add(1, std::memory_order_relaxed);
    co_return stored;
  }

  /// "" when the body passes the provider's param_whitelist, else the reason.
  std::string params_problem(const server::Request& request) const {
    return check_params(options_.provider.param_whitelist, request.headers.get("Content-Type"), request.body);
  }

  upstream::Request build_request(const Exchange& ex, const NormalisedTarget& target, const std::string& api_key,
                                  const CacheState& cache, bool& validators_added) const {
    upstream::Request up;
    up.method = ex.request.method;
    // The normalised target goes upstream as received: like the reference, only scheme, host and port of base_url
    // are used, so `https://api.openai.com/v1` + `/v1/chat/completions` is not `/v1/v1/...`.
    up.target = target.target();
    // Built in a per-thread buffer: add() copies it, and a key is long enough that a new string would allocate.
    thread_local std::string authorization;
    authorization.assign("Bearer ").append(api_key);
    // Host, Authorization and X-Request-ID never pass the filter towards the upstream, so they are added, not
    // set (no search), into room made by the copy.
    up.headers = filter_headers(ex.request.headers, Direction::to_upstream,
                                host_header_.size() + authorization.size() + ex.request.request_id.size() + 64, 3);
    up.headers.add("Host", host_header_);
    up.headers.add("Authorization", authorization);
    up.headers.add("X-Request-ID", ex.request.request_id);
    // Revalidation the client asked for (no-cache, max-age=0) of a stored answer: with its validators, unless the
    // client sent its own conditional (then the upstream's answer is the client's, 304 included).
    validators_added = false;
    if (cache.use == CacheUse::revalidate && !ex.request.headers.contains("If-None-Match") &&
        !ex.request.headers.contains("If-Modified-Since")) {
      const std::string_view etag = cache.entry->headers.get("ETag");
      const std::string_view modified = cache.entry->headers.get("Last-Modified");
      if (!etag.empty()) up.headers.set("If-None-Match", etag);
      if (!modified.empty()) up.headers.set("If-Modified-Since", modified);
      validators_added = !etag.empty() || !modified.empty();
    }
    return up;  // without the body: forward() lends it
  }

  /// send() that never throws (the race in forward() needs both sides to finish normally): the response, or
  /// the error. Cancellation (the client left) ends it with `error` set; the connection is closed then.
  net::awaitable<void> send_upstream(const Deps& deps, const upstream::Request& request,
                                     std::chrono::milliseconds header_timeout, std::unique_ptr<upstream::Response>& res,
                                     std::optional<upstream::Error>& error) {
    try {
      res = co_await deps.client->send(request, header_timeout);
    } catch (const upstream::Error& e) {
      error = e;
    } catch (const std::exception& e) {
      error = upstream::Error(upstream::ErrorKind::closed, e.what());
    }
  }

  /// read_all() that never throws, for the same race.
  static net::awaitable<void> read_upstream_body(upstream::Response& res, std::chrono::milliseconds timeout,
                                                 std::string& body, std::optional<upstream::ErrorKind>& error) {
    try {
      body = co_await res.read_all(timeout);
    } catch (const std::exception& e) {
      error = failure_kind(e);
    }
  }

  /// The body when all of it has arrived (usually with the headers), read without a coroutine; false when it
  /// must be awaited (read_upstream_body()).
  static bool read_received_body(upstream::Response& res, std::string& body, std::optional<upstream::ErrorKind>& error) {
    try {
      std::optional<std::string> whole = res.read_received();
      if (!whole) return false;
      body = std::move(*whole);
    } catch (const std::exception& e) {
      error = failure_kind(e);
    }
    return true;
  }

  /// What reading the body failed with: an upstream::Error's kind, `closed` for anything else.
  static upstream::ErrorKind failure_kind(const std::exception& e) {
    const auto* up = dynamic_cast<const upstream::Error*>(&e);
    return up != nullptr ? up->kind : upstream::ErrorKind::closed;
  }

  /// The upstream's Content-Length, when it sent exactly one valid one.
  static std::optional<std::uint64_t> content_length(const upstream::Response& res) {
    const std::string_view v = res.headers.get("Content-Length");
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc{} || end != v.data() + v.size()) return std::nullopt;
    return n;
  }

  static void log_client_gone(const Exchange& ex) {
    log::write(log::Level::info, "client_gone", {{"request_id", ex.request.request_id}});
  }

  /// A copy of a relayed body kept for the response cache, up to `limit` bytes (beyond: given up).
  struct Capture {
    std::string bytes;
    std::size_t limit = 0;
    bool overflow = false;
  };

  /// Writes the rest of the body to the client piece by piece as it arrives, once begin_stream() or
  /// begin_sized() sent the head (`begun`; false: the client is gone). A failure on either side closes the
  /// upstream connection, so the provider stops working; the client sees a body cut short on a closed
  /// connection (headers are out: that is the only honest signal left). `failure_event` names the log line.
  /// `capture`, if set, gets a copy of the body. True when the body ended cleanly on both sides.
  static net::awaitable<bool> relay_body(Exchange& ex, upstream::Response& res, bool begun,
                                         std::chrono::milliseconds idle_timeout, const char* failure_event,
                                         RequestRecord& record, Capture* capture = nullptr) {
    if (!begun) {
      res.abort();
      co_return false;
    }
    for (;;) {
      std::optional<std::string> piece;
      try {
        piece = co_await res.read_some(idle_timeout);
      } catch (const upstream::Error& e) {
        log::write(log::Level::warn, failure_event, {{"request_id", ex.request.request_id}, {"error", e.what()}});
        res.abort();
        co_return false;
      }
      if (!piece) break;
      record.body(*piece);
      if (res.body_received()) record.record_usage();  // the last piece: recorded before the client has it
      if (capture != nullptr && !capture->overflow) {
        if (capture->bytes.size() + piece->size() > capture->limit) {
          capture->overflow = true;
          capture->bytes = std::string{};
        } else {
          capture->bytes += *piece;
        }
      }
      if (!co_await ex.write_chunk(*piece)) {
        res.abort();
        co_return false;
      }
    }
    record.record_usage();  // before the end of the body reaches the client
    co_return co_await ex.end_stream();
  }

// GCC 12 false positive (-Wmismatched-new-delete, also reported against Boost 1.81 elsewhere): Asio allocates a
// coroutine frame with awaitable_frame_base::operator new, which ends in the global operator new (see
// cmake/Dependencies.cmake), and frees it with the matching awaitable_frame_base::operator delete; once both are
// inlined GCC pairs the global operator new with the class's operator delete. Only for this function, whose frame
// GCC inlines into handle(), and for handle() itself.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
  net::awaitable<void> forward(Exchange& ex, const Deps& deps, const NormalisedTarget& target,
                               const std::string& api_key, std::string_view origin, CacheState& cache,
                               RequestRecord& record) {
    const auto& p = options_.provider;
    const auto header_timeout = std::min(options_.request_timeout, p.timeouts.response_header);
    const auto sent = std::chrono::steady_clock::now();
    std::unique_ptr<upstream::Response> res;
    std::optional<upstream::Error> error;
    bool validators_added = false;
    upstream::Request request = build_request(ex, target, api_key, cache, validators_added);
    // The client's body is lent to the upstream request, not copied, and given back once the request was sent
    // (send_upstream() has finished when the race below ends): an event capture reads it later.
    request.body = std::move(ex.request.body);
    // Raced with the client leaving: a client that gives up cancels the upstream request (its connection is
    // closed) instead of leaving it to run to the timeout.
    // Named locals: GCC 12 mishandles temporaries inside co_await expressions.
    auto watched = ex.unless_client_leaves(send_upstream(deps, request, header_timeout, res, error));
    const bool answered = co_await std::move(watched);
    ex.request.body = std::move(request.body);
    if (!answered) {
      if (res) res->abort();
      log_client_gone(ex);
      co_return;
    }
    ex.access.upstream_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent).count();
    if (error) {
      deps.breaker->record(upstream::CircuitBreaker::Outcome::failure);
      deps.metrics->upstream_errors.fetch_add(1, std::memory_order_relaxed);
      log::write(log::Level::warn, "upstream_failed",
                 {{"request_id", ex.request.request_id}, {"provider", p.name}, {"error", error->what()}});
      Response err = error->kind == upstream::ErrorKind::timeout
                         ? api_error_for(origin, 504, "upstream_timeout",
                                         "the upstream provider did not answer in time")
                         : api_error_for(origin, 502, "upstream_error",
                                         "the upstream provider could not be reached");
      co_await ex.respond(std::move(err));
      co_return;
    }
    deps.metrics->upstream_seconds.observe(ex.access.upstream_ms / 1000.0);
    deps.breaker->record(upstream::outcome_of_status(res->status));

    // CORS is added last: the cache keeps the upstream's fields only. The upstream's list is not needed after
    // its Content-Length is read: filtered where it is.
    const std::optional<std::uint64_t> length = content_length(*res);
    Headers headers = std::move(res->headers);
    filter_headers_in_place(headers, Direction::to_client);
    record.expect_body(headers.get("Content-Type"));
    const auto body_timeout = std::min(options_.request_timeout, p.timeouts.request);
    if (!res->streaming && length && *length > options_.max_buffered_response_size) {
      // Too large to hold (and to cache): relayed piece by piece under the same Content-Length.
      detail::mark_forwarded(headers, cache, false, false);
      if (!origin.empty()) add_cors_headers(headers, origin);
      const bool begun = co_await ex.begin_sized(res->status, std::move(headers), *length);
      co_await relay_body(ex, *res, begun, body_timeout, "upstream_body_failed", record);
      co_return;
    }
    const std::optional<cache::Lifetime> lifetime =
        cache.may_store() ? detail::lifetime_for(res->status, headers, ex.request.headers,
                                                 options_.cache.default_ttl, options_.cache.stream_responses)
                          : std::nullopt;
    if (!res->streaming) {
      std::string body;
      std::optional<upstream::ErrorKind> read_error;
      if (!read_received_body(*res, body, read_error)) {  // else nothing to wait for: no race with the client
        auto watched_read = ex.unless_client_leaves(read_upstream_body(*res, body_timeout, body, read_error));
        if (!co_await std::move(watched_read)) {
          res->abort();
          log_client_gone(ex);
          co_return;
        }
      }
      if (read_error) {
        deps.metrics->upstream_errors.fetch_add(1, std::memory_order_relaxed);
        const bool timeout = *read_error == upstream::ErrorKind::timeout;
        Response err = timeout ? api_error_for(origin, 504, "upstream_timeout",
                                               "the upstream provider did not finish in time")
                               : api_error_for(origin, 502, "upstream_error",
                                               "the upstream connection failed while reading the response");
        co_await ex.respond(std::move(err));
        co_return;
      }
      record.body(body);
      if (validators_added && res->status == 304) {
        // The upstream confirmed the stored answer: stored again for its lifetime, served from the cache.
        auto renewed = std::make_shared<cache::Entry>(*cache.entry);
        const std::int64_t now = detail::now_ms();
        renewed->expires_at_ms = now + (cache.entry->expires_at_ms - cache.entry->stored_at_ms);
        renewed->stored_at_ms = now;
        co_await store(deps, cache, renewed);
        Response r = detail::answer_from_entry(*renewed, ex.request, cache.key, now, true);
        if (!origin.empty()) add_cors_headers(r.headers, origin);
        record.record_usage();
        co_return co_await ex.respond(std::move(r));
      }
      bool stored = false;
      if (lifetime && body.size() <= options_.cache.max_object_bytes) {
        auto entry = detail::make_entry(res->status, headers, body, *lifetime, ex.request.headers, detail::now_ms());
        stored = co_await store(deps, cache, std::move(entry));
      }
      Response r;
      r.status = res->status;
      r.headers = std::move(headers);
      detail::mark_forwarded(r.headers, cache, stored, lifetime && lifetime->forced);
      if (!origin.empty()) add_cors_headers(r.headers, origin);
      r.body = std::move(body);
      record.record_usage();  // before the client has the answer (see RequestRecord::record_usage)
      co_return co_await ex.respond(std::move(r));
    }

    if (headers.get("Content-Type").starts_with("text/event-stream")) {
      // Tell intermediaries (nginx, CDNs) not to buffer the stream.
      headers.set("X-Accel-Buffering", "no");
      headers.set("Cache-Control", "no-cache");
    }
    // A stream is kept while relayed (up to the object limit) and stored once it ended cleanly on both sides.
    std::optional<Capture> capture;
    std::optional<Headers> stored_headers;
    if (lifetime) {
      capture.emplace();
      capture->limit = options_.cache.max_object_bytes;
      stored_headers = headers;
    }
    detail::mark_forwarded(headers, cache, false, false);
    if (!origin.empty()) add_cors_headers(headers, origin);
    const int status = res->status;
    const bool begun = co_await ex.begin_stream(status, std::move(headers));
    Capture* kept = capture ? &*capture : nullptr;
    const bool clean =
        co_await relay_body(ex, *res, begun, options_.stream_idle_timeout, "upstream_stream_failed", record, kept);
    if (clean && capture && !capture->overflow) {
      auto entry = detail::make_entry(status, *stored_headers, std::move(capture->bytes), *lifetime,
                                      ex.request.headers, detail::now_ms());
      co_await store(deps, cache, std::move(entry));
    }
  }
#pragma GCC diagnostic pop

  /// The Host field sent upstream: the provider's host, with its port unless the scheme's default.
  static std::string host_header_of(const config::Provider& p) {
    const bool default_port = (p.scheme == "https" && p.port == 443) || (p.scheme == "http" && p.port == 80);
    return default_port ? p.host : p.host + ":" + std::to_string(p.port);
  }

  const Options& options_;
  const lifecycle::Published<const Deps>& deps_;
  const std::string host_header_;
};

}  // namespace

Response api_error(int status, std::string_view code, std::string_view message) {
  const char* type = status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error";
  std::string body = "{\"error\":{\"message\":\"";
  body.append(server::json_escape(message)).append("\",\"type\":\"").append(type);
  body.append("\",\"param\":null,\"code\":\"").append(server::json_escape(code)).append("\"}}");
  return Response::json(status, std::move(body));
}

bool origin_allowed(const config::Provider& provider, std::string_view origin) {
  const auto& allowed = provider.allowed_origins;
  if (origin.empty()) return false;
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
}

void add_cors_headers(Headers& headers, std::string_view origin) {
  headers.remove("Access-Control-Allow-Credentials");
  headers.set("Access-Control-Allow-Origin", origin);
  headers.set("Access-Control-Expose-Headers", kExposedHeaders);
  headers.add("Vary", "Origin");
}

std::function<std::optional<Response>(std::string_view, std::string_view, int, std::string_view, std::string_view)>
session_error_shaper(const config::Provider& provider) {
  return [provider](std::string_view target, std::string_view origin, int status, std::string_view code,
                    std::string_view message) -> std::optional<Response> {
    if (!target.starts_with("/v1/")) return std::nullopt;
    return api_error_for(origin_allowed(provider, origin) ? origin : std::string_view{}, status, code, message);
  };
}

void register_routes(server::Router& router, Options options, lifecycle::Published<const Deps> deps) {
  // One pipeline for every request (its members are read-only), and a handler that is no coroutine of its own.
  struct State {
    State(Options o, lifecycle::Published<const Deps> d)
        : options(std::move(o)), deps(std::move(d)), pipeline(options, deps) {}
    Options options;
    lifecycle::Published<const Deps> deps;
    Pipeline pipeline;  // refers to the two above
  };
  auto state = std::make_shared<State>(std::move(options), std::move(deps));
  router.add_prefix("/v1/", [state](Exchange& ex) { return state->pipeline.handle(ex); });
}

}  // namespace llmproxy::proxy
