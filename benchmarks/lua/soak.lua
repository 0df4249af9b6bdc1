-- wrk script of benchmarks/soak.py: one wrk process per URL, so every count
-- belongs to one URL. Counts every status code, every X-Cache value, and each
-- 5xx answer by (status, Retry-After present, the problem body's "outcome",
-- second of the wall clock), so the harness can tell the documented Redis-down
-- answers from anything else and place them in time. Prints one line
-- "SOAK_RESULT {json}" at the end.
-- Usage: wrk ... -s soak.lua URL -- <GET|POST> <tag> [bearer token]

threads = {}
statuses = {}
xcache = {}
fivexx = {}
no_ratelimit = 0
counter = 0
tag = "soak"

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

function init(args)
  local method = args[1] or "GET"
  tag = args[2] or tag
  wrk.method = method
  if args[3] ~= nil then
    wrk.headers["Authorization"] = "Bearer " .. args[3]
  end
  if method == "POST" then
    wrk.headers["Content-Type"] = "application/json"
  end
end

function request()
  if wrk.method ~= "POST" then
    return wrk.format()
  end
  counter = counter + 1
  -- Item.name is unique: tag, thread number and a per-thread counter.
  local body = string.format(
    '{"name":"%s-%d-%d","description":"Created by the soak test.",' ..
    '"price":"9.99","quantity":%d}',
    tag, thread_no, counter, counter % 50)
  return wrk.format("POST", nil, nil, body)
end

local function bump(t, key)
  t[key] = (t[key] or 0) + 1
end

function response(status, headers, body)
  bump(statuses, tostring(status))
  local cache_state, retry_after, limited = nil, "-", false
  for name, value in pairs(headers) do
    local lower = string.lower(name)
    if lower == "x-cache" then
      cache_state = value
    elseif lower == "retry-after" then
      retry_after = "RA"
    elseif lower == "ratelimit" then
      limited = true
    end
  end
  if status < 300 and not limited then
    no_ratelimit = no_ratelimit + 1
  end
  if cache_state ~= nil then
    bump(xcache, cache_state)
  end
  if status >= 500 then
    local outcome = string.match(body or "", '"outcome"%s*:%s*"([%w_]+)"') or "-"
    bump(fivexx, string.format("%d %s %s %d", status, retry_after, outcome, os.time()))
  end
end

local function encode(t)
  local parts = {}
  for key, value in pairs(t) do
    table.insert(parts, string.format('"%s":%d', key, value))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function merge(into, from)
  for key, value in pairs(from or {}) do
    into[key] = (into[key] or 0) + value
  end
end

function done(summary, latency, requests)
  local all_statuses, all_xcache, all_fivexx, plain = {}, {}, {}, 0
  for _, thread in ipairs(threads) do
    plain = plain + (thread:get("no_ratelimit") or 0)
    merge(all_statuses, thread:get("statuses"))
    merge(all_xcache, thread:get("xcache"))
    merge(all_fivexx, thread:get("fivexx"))
  end
  local e = summary.errors
  io.write(string.format(
    'SOAK_RESULT {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"statuses":%s,"xcache":%s,"fivexx":%s,"no_ratelimit":%d,' ..
    '"latency_us":{"p50":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    encode(all_statuses), encode(all_xcache), encode(all_fivexx), plain,
    latency:percentile(50), latency:percentile(99), latency.max))
end
