
local used, starts = {}, {}
for i = 1, n do
  -- fmod is exact on doubles, unlike floor(now / period)
  local start = now - math.fmod(now, periods[i])
  starts[i] = start
  used[i] = 0
  local value = redis.call('GET', KEYS[i])
  if value then
    local w, c = string.match(value, '^(%d+):(%d+)$')
    if w and tonumber(w) == start then used[i] = tonumber(c) end
  end
  if used[i] >= counts[i] then
    allowed = 0
    local wait = start + periods[i] - now
    if wait > retry then retry = wait end
  end
end
local out = {allowed, ms(retry)}
for i = 1, n do
  local wait = starts[i] + periods[i] - now
  if allowed == 1 then
    used[i] = used[i] + 1
    redis.call('SET', KEYS[i], string.format('%d:%d', starts[i], used[i]), 'PX', ttl(wait))
  end
  out[1 + 2 * i] = math.max(counts[i] - used[i], 0)
  if used[i] > 0 then out[2 + 2 * i] = ms(wait) else out[2 + 2 * i] = 0 end
end
return out
