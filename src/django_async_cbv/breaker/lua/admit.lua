
if state == 0 then return {1, 0, epoch, failures, -1, opened, tonumber(gen), failures} end
local now = clock()
local old = -1
if state == 1 then
  local due = opened + tonumber(ARGV[2])
  if now < due then
    return {0, 1, epoch, math.ceil((due - now) / 1000), -1, opened, tonumber(gen), failures}
  end
  move(2, now)
  old = 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return {0, 2, epoch, 1000, old, opened, tonumber(gen), failures}
end
own()
local lease = redis.call('HINCRBY', KEYS[1], 'l', 1)
local expiry = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], string.format('%d', expiry), lease)
redis.call('PEXPIRE', KEYS[2], KEEP)
return {1, 2, epoch, lease, old, opened, tonumber(gen), failures}
