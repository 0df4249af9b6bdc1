
if redis.replicate_commands then redis.replicate_commands() end
local function clock()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local KEEP = @KEEP@
local h = redis.call('HMGET', KEYS[1], 's', 'e', 'f', 'n', 'o', 'g')
local state = tonumber(h[1]) or 0
local epoch = tonumber(h[2]) or 0
local failures = tonumber(h[3]) or 0
local successes = tonumber(h[4]) or 0
local opened = tonumber(h[5]) or 0
local gen = h[6] or '0'
local function own()
  if gen == '0' then
    gen = ARGV[#ARGV]
    redis.call('HSET', KEYS[1], 'g', gen)
  end
end
local function move(to, now)
  own()
  epoch = epoch + 1
  state = to
  redis.call('HSET', KEYS[1], 's', to, 'e', epoch, 'f', 0, 'n', 0)
  if to == 1 then
    opened = now
    redis.call('HSET', KEYS[1], 'o', string.format('%d', now))
  end
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], KEEP)
end
