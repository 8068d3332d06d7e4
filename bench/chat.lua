-- wrk script: POST a small chat completion. Environment:
--   TOKEN        bearer token sent as Authorization (none when unset or empty)
--   STREAM=1     ask for a stream ("stream":true in the body)
--   CACHE=hit    opt in to the response cache (Cache-Control: public, max-age=3600): after the first, every
--                request is a hit
--   CACHE=store  opt in and ask for revalidation (no-cache): every request is looked up, forwarded and stored
--   DRAIN_AFTER  seconds: after this long no new request is sent, so the connections fall idle and every request
--                wrk sent has been answered and counted when it stops (exact counts; run wrk with -d longer than
--                this). Costs wrk a timer per request, so only the exactness rows use it.
-- done() prints one machine-readable line for bench/run.sh:
--   BENCH requests=.. duration_us=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. mean_us=..
--         http_errors=.. connect=.. read=.. write=.. timeout=..
-- http_errors counts responses with a status >= 400 (wrk's own count; wrk cannot see 1xx/3xx without a Lua
-- response() hook that would slow it down, so bench/run.sh checks each target with one curl first).
wrk.method = "POST"
if os.getenv("STREAM") == "1" then
  wrk.body = '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello"}]}'
else
  wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
end
wrk.headers["Content-Type"] = "application/json"
local cache = os.getenv("CACHE")
if cache == "hit" then
  wrk.headers["Cache-Control"] = "public, max-age=3600"
elseif cache == "store" then
  wrk.headers["Cache-Control"] = "public, max-age=3600, no-cache"
end
local token = os.getenv("TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local drain_after = tonumber(os.getenv("DRAIN_AFTER") or "")
if drain_after then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  local function now()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
  end
  local deadline
  function delay()
    local t = now()
    if not deadline then deadline = t + drain_after end
    if t < deadline then return 0 end
    return 1000000000 -- ms: never again before wrk stops
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f " ..
    "http_errors=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, e.status, e.connect, e.read, e.write, e.timeout))
end
