-- Take the key's lock for the token ARGV[1] (ARGV[2] ms): 1 if this token holds it.
-- Idempotent: a command sent again after its reply was lost finds its own token.
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if held then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
