-- wrk script of bench/run.sh: every request of every connection POSTs the XML-RPC call in the
-- file $BENCH_BODY to the URL given to wrk, and every answer is checked (HTTP 200 and the oned
-- success flag <boolean>1</boolean>). At the end one line is printed for stratusd-bench:
--   BENCH_WRK requests=N rps=R mean_ms=.. p50_ms=.. p99_ms=.. bytes=B failed=F socket_errors=E

local body_file = os.getenv("BENCH_BODY")
if body_file == nil then
  error("BENCH_BODY must name the XML-RPC request body to post")
end
local f = assert(io.open(body_file, "rb"))
local call = f:read("*a")
f:close()

local all_threads = {}
local http_request = nil

function setup(thread)
  all_threads[#all_threads + 1] = thread
end

function init(args)
  passed = 0
  failed = 0
  -- The request never changes: format it once per thread.
  http_request = wrk.format("POST", nil, { ["Content-Type"] = "text/xml" }, call)
end

function request()
  return http_request
end

function response(status, headers, body)
  if status == 200 and body ~= nil and body:find("<boolean>1</boolean>", 1, true) then
    passed = passed + 1
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local failures = 0
  for _, thread in ipairs(all_threads) do
    failures = failures + thread:get("failed")
  end
  local e = summary.errors
  local seconds = summary.duration / 1000000
  print(string.format(
    "BENCH_WRK requests=%d rps=%.1f mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f bytes=%d failed=%d socket_errors=%d",
    summary.requests, summary.requests / seconds, latency.mean / 1000,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.bytes, failures,
    e.connect + e.read + e.write + e.timeout + e.status))
end
