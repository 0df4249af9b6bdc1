
if redis.replicate_commands then redis.replicate_commands() end
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local n = tonumber(ARGV[2])
local counts, periods = {}, {}
for i = 1, n do
  counts[i] = tonumber(ARGV[1 + 2 * i])
  periods[i] = tonumber(ARGV[2 + 2 * i]) * 1000000
end
local function ms(us)
  if us <= 0 then return 0 end
  return math.ceil(us / 1000)
end
-- expiry (ms) for state that matters for ``us`` more microseconds, with one second of
-- slack: state must never vanish early (clock steps, or a fake clock in tests)
local function ttl(us)
  return ms(us) + 1000
end
local allowed = 1
local retry = 0
