
local old = state
move(0, clock())
if old == 0 then old = -1 end
return {0, epoch, old, 0, opened}
