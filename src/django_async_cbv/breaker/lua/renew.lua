
if tonumber(ARGV[2]) ~= epoch or ARGV[5] ~= gen then return {0} end
if not redis.call('ZSCORE', KEYS[2], ARGV[3]) then return {0} end
local expiry = clock() + tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], 'XX', string.format('%d', expiry), ARGV[3])
redis.call('PEXPIRE', KEYS[2], KEEP)
return {1}
