
-- A call admitted while closed before the circuit had any state carries generation 0:
-- it is this state's own call (another call's failure may have created it since).
local mine = ARGV[7] == gen or (ARGV[7] == '0' and state == 0)
if ARGV[4] ~= '' and mine then redis.call('ZREM', KEYS[2], ARGV[4]) end
local outcome = tonumber(ARGV[3])
if tonumber(ARGV[2]) ~= epoch or not mine or outcome == 0 then
  return {state, epoch, -1, failures, opened}
end
local now = clock()
if outcome == 2 then
  own()
  redis.call('HSET', KEYS[1], 'lf', string.format('%d', now))
end
if state == 0 then
  if outcome == 1 then
    if failures > 0 then redis.call('HSET', KEYS[1], 'f', 0) end
    return {0, epoch, -1, 0, opened}
  end
  failures = redis.call('HINCRBY', KEYS[1], 'f', 1)
  redis.call('PEXPIRE', KEYS[1], KEEP)
  if failures >= tonumber(ARGV[5]) then
    move(1, now)
    return {1, epoch, 0, 0, opened}
  end
  return {0, epoch, -1, failures, opened}
end
if state == 2 and ARGV[4] ~= '' then
  if outcome == 2 then
    move(1, now)
    return {1, epoch, 2, 0, opened}
  end
  successes = redis.call('HINCRBY', KEYS[1], 'n', 1)
  if successes >= tonumber(ARGV[6]) then
    move(0, now)
    return {0, epoch, 2, 0, opened}
  end
end
return {state, epoch, -1, failures, opened}
