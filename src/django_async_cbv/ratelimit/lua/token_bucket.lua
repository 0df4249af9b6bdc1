
local tokens, stamps = {}, {}
for i = 1, n do
  local level = counts[i]
  local stamp = now
  local value = redis.call('GET', KEYS[i])
  if value then
    local t, s = string.match(value, '^([^:]+):(%d+)$')
    if t then
      level = tonumber(t)
      stamp = tonumber(s)
      if now > stamp then
        level = math.min(counts[i], level + (now - stamp) * counts[i] / periods[i])
        stamp = now
      end
    end
  end
  tokens[i] = level
  stamps[i] = stamp
  if level < 1 then
    allowed = 0
    local wait = (1 - level) * periods[i] / counts[i]
    if wait > retry then retry = wait end
  end
end
local out = {allowed, ms(retry)}
for i = 1, n do
  if allowed == 1 then
    tokens[i] = tokens[i] - 1
  end
  local full = (counts[i] - tokens[i]) * periods[i] / counts[i]
  if allowed == 1 then
    redis.call('SET', KEYS[i], string.format('%.17g:%d', tokens[i], stamps[i]), 'PX', ttl(full))
  end
  out[1 + 2 * i] = math.floor(tokens[i])
  out[2 + 2 * i] = ms(full)
end
return out
