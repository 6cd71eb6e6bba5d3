-- grow.lua - the bundled example: a Lua program that keeps building tables
-- until memory runs out, and handles the failure itself.
--
--   cebox run lua5.4 examples/grow.lua
--
-- Natively it would use hundreds of megabytes; inside cebox's 32 MB slot
-- Lua's allocator gets NULL, Lua raises "not enough memory", and the
-- program catches it, reports how far it got and exits normally.
local keep = {}
local function grow()
  for i = 1, 2000000 do
    keep[i] = { id = i, name = "record " .. i, tags = { i % 7, i % 11 } }
    if i % 50000 == 0 then
      io.write(string.format("%7d records\n", i))
      io.flush()
    end
  end
end

local ok, err = pcall(grow)
local count = #keep
keep = nil
collectgarbage()
if ok then
  print(string.format("built all %d records: this machine has room to spare", count))
else
  print(string.format("stopped after %d records: %s", count, tostring(err)))
end
