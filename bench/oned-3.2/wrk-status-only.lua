-- The baseline's wrk-xmlrpc-post.lua without its per-answer check: the same fixed POST of $WRK_BODY,
-- but no response() callback, so wrk does not copy every answer into a Lua string (for a 1.1 MB
-- vmpool.info answer that copy is most of wrk's CPU). Only HTTP statuses are counted (wrk counts
-- non-2xx as err_status); bench/same-day.py checks once before the runs that the body answers
-- <boolean>1</boolean>. Prints the same RESULT line, so `bench/same-day.py --script` takes it.
-- For analysis only: the issue's figures use the baseline's checking script.

local path = os.getenv("WRK_BODY") or error("set WRK_BODY to the XML-RPC request body file")
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "text/xml"
wrk.headers["User-Agent"] = "wrk-xmlrpc-post"

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_s=%.3f rps=%.2f bytes=%d lat_mean_ms=%.3f lat_stdev_ms=%.3f " ..
      "lat_p50_ms=%.3f lat_p90_ms=%.3f lat_p99_ms=%.3f lat_max_ms=%.3f ok=%d xmlrpc_fail=0 non200=0 " ..
      "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
      summary.requests, secs, summary.requests / secs, summary.bytes,
      latency.mean / 1000, latency.stdev / 1000,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, summary.requests - e.status, e.connect, e.read, e.write, e.timeout, e.status))
end
