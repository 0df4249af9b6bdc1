
local cards = {}
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - periods[i])
  local card = redis.call('ZCARD', KEYS[i])
  cards[i] = card
  if card >= counts[i] then
    allowed = 0
    -- the entry whose expiry brings the log below count frees the slot
    local entry = redis.call('ZRANGE', KEYS[i], card - counts[i], card - counts[i], 'WITHSCORES')
    local wait = tonumber(entry[2]) + periods[i] - now
    if wait > retry then retry = wait end
  end
end
local out = {allowed, 0}
if allowed == 1 then
  local seq_key = KEYS[n + 1]
  local seq = redis.call('INCR', seq_key)
  local member = string.format('%d:%d', now, seq)
  local longest = 0
  for i = 1, n do
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('PEXPIRE', KEYS[i], ttl(periods[i]))
    if periods[i] > longest then longest = periods[i] end
    out[1 + 2 * i] = math.max(counts[i] - cards[i] - 1, 0)
    out[2 + 2 * i] = ms(periods[i])
  end
  redis.call('PEXPIRE', seq_key, ttl(longest))
else
  out[2] = ms(retry)
  for i = 1, n do
    out[1 + 2 * i] = math.max(counts[i] - cards[i], 0)
    local reset = 0
    if cards[i] > 0 then
      local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
      reset = tonumber(newest[2]) + periods[i] - now
    end
    out[2 + 2 * i] = ms(reset)
  end
end
return out
