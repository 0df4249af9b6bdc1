-- wrk script for the create endpoint: POSTs a JSON object whose "name" is
-- unique for the whole run (tag from the command line, thread number, and a
-- per-thread counter), checks every response status, and prints a one-line
-- JSON summary at the end. Usage: wrk ... -s post.lua URL -- <tag>

threads = {}
non2xx = 0
counter = 0
tag = "bench"

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

function init(args)
  if args[1] ~= nil then
    tag = args[1]
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"name":"%s-%d-%d","description":"Created by the load generator.",' ..
    '"price":"19.99","quantity":%d,"is_active":true}',
    tag, thread_no, counter, counter % 50)
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"non2xx":%d,"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
