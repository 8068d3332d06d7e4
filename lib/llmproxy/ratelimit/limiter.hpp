#pragma once
/// Request rate limits per token and per project (SPEC §14 "Rate limits"): a sliding minute (the two-bucket
/// approximation of window.hpp, whose header derives Retry-After and the accuracy bound), kept in memory for one
/// instance or shared by every instance through one Redis server.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llmproxy/redis/options.hpp"

namespace boost::asio {
class io_context;
}

namespace llmproxy::ratelimit {

/// One limit on one key: at most `limit_per_minute` requests in a sliding minute. `key` names what is limited,
/// e.g. "t:<token id>" or "p:<project id>". A limit below 1 refuses every request; limits above 10^11 count as
/// 10^11.
struct Rule {
  std::string key;
  std::int64_t limit_per_minute = 0;
};

struct Decision {
  bool allowed = true;
  /// When !allowed && !unavailable: the index of the first rule that refused.
  std::size_t refused_rule = 0;
  /// When !allowed && !unavailable: whole seconds (>= 1) until every rule that refused would allow one more
  /// request (the largest of their waits; retrying earlier is refused again), if nothing else is counted meanwhile.
  std::chrono::seconds retry_after{0};
  /// The backend could not decide (Redis down or too slow); `allowed` is then the FailMode's answer and nothing
  /// was counted.
  bool unavailable = false;
};

/// What the Redis limiter answers when Redis cannot: allow (open, the default of the proxy) or refuse (closed).
enum class FailMode { open, closed };

class Limiter {
 public:
  virtual ~Limiter() = default;

  /// All or nothing over the rules (1 or 2 of them, distinct keys): if every rule allows one more request in its
  /// sliding minute, counts one request on every rule and allows; otherwise counts nothing and refuses. No rules:
  /// allowed. Never throws for a backend failure (see Decision::unavailable). Any thread, any executor; the
  /// memory limiter completes without suspending.
  virtual boost::asio::awaitable<Decision> acquire(std::vector<Rule> rules) = 0;

  /// allowed and refused: the decisions the backend made; unavailable: the calls it could not decide (whatever
  /// FailMode answered). keys: the keys held in memory (memory limiter; 0 for Redis).
  struct Stats {
    std::uint64_t allowed = 0, refused = 0, unavailable = 0;
    std::size_t keys = 0;
  };
  /// Any thread.
  virtual Stats stats() const = 0;
};

/// In this process only. Sharded mutexes (a call locks the shards of its keys, in shard order); per key the
/// bucket number and its two counts (about 100 bytes with the key). Memory is bounded by the keys used in the
/// last two minutes: the first call in each new minute drops the keys idle for two buckets (whose counts are
/// then zero), shard by shard, so there is no timer. `now_ms` (Unix epoch ms) is injectable for tests; default:
/// the system clock.
std::shared_ptr<Limiter> make_memory_limiter(std::function<std::int64_t()> now_ms = {});

/// Shared by every instance through one Redis server: each acquire is ONE round trip, an EVAL of one Lua script
/// (atomic on the server) that reads the two buckets of every rule (one MGET), decides, and only if every rule
/// allows INCRs and PEXPIREs (2 minutes) their current buckets: 1 + 2 * rules commands when allowed, 1 when
/// refused. Keys: `<key_prefix><rule key>:<bucket>`, bucket = floor(now_ms / 60000) of this instance's clock
/// (so instances must be NTP-synchronised; see window.hpp for the effect of a skew). A failure or a reply later
/// than options.timeout: Decision{allowed = (mode == open), unavailable = true}, counted; the connection
/// reconnects by itself (redis::Connection). `io` must outlive the limiter. `now_ms` is injectable for tests.
std::shared_ptr<Limiter> make_redis_limiter(boost::asio::io_context& io, redis::ConnectionOptions options,
                                            std::string key_prefix /* e.g. "llmproxy:rl:" */, FailMode mode,
                                            std::function<std::int64_t()> now_ms = {});

}  // namespace llmproxy::ratelimit
