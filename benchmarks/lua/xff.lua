-- wrk script for GET endpoints behind one trusted proxy: every request carries an
-- X-Forwarded-For address, taken in turn from a pool of POOL addresses
-- (10.0.0.0, 10.0.0.1, ...), so the requests of a run are spread evenly over POOL
-- clients. Every response status is checked, and a one-line JSON summary is
-- printed at the end. Usage: wrk ... -s xff.lua URL -- <tag> <pool>

threads = {}
non2xx = 0
counter = 0
pool = 5000
headers = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  if args[2] ~= nil then
    pool = tonumber(args[2])
  end
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
end

function request()
  local i = counter % pool
  counter = counter + 1
  headers["X-Forwarded-For"] = string.format(
    "10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  return wrk.format(nil, nil, headers)
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
