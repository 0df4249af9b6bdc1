
if state == 1 then
  local now = clock()
  if now >= opened + tonumber(ARGV[2]) then
    move(2, now)
    return {2, epoch, 1, failures, opened}
  end
end
return {state, epoch, -1, failures, opened}
