-- Lighter wrk script of bench/run.sh, for the large pool listings: the same fixed POST of
-- $BENCH_BODY, but answers are only checked for their HTTP status (wrk counts non-2xx itself)
-- and are not handed to Lua, so wrk does not copy every multi-megabyte body into a Lua string.
-- stratusd-bench checks once before each run that the body answers <boolean>1</boolean>.
-- Prints the same BENCH_WRK line as xmlrpc-post.lua.

local body_file = os.getenv("BENCH_BODY")
if body_file == nil then
  error("BENCH_BODY must name the XML-RPC request body to post")
end
local f = assert(io.open(body_file, "rb"))
local call = f:read("*a")
f:close()

local http_request = nil

function init(args)
  http_request = wrk.format("POST", nil, { ["Content-Type"] = "text/xml" }, call)
end

function request()
  return http_request
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1000000
  print(string.format(
    "BENCH_WRK requests=%d rps=%.1f mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f bytes=%d failed=%d socket_errors=%d",
    summary.requests, summary.requests / seconds, latency.mean / 1000,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.bytes, e.status,
    e.connect + e.read + e.write + e.timeout))
end
