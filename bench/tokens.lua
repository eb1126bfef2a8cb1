-- bench/tokens.lua: a wrk script that sends a different bearer token with
-- each request, taken from a file with one token per line.
--
--   wrk ... -s bench/tokens.lua URL -- FILE MODE [SKIP]
--
-- MODE "cycle": every line of FILE is loaded at start; requests take them
--   round robin (token 1, 2, ..., N, 1, 2, ...). Used for the 1,000-token
--   rotation and for the unknown-kid flood.
-- MODE "once": lines are read one per request, in order, starting after
--   SKIP lines, and never repeated. If the file runs out, reading starts
--   again at line 1 and the run is counted as wrapped (the report then
--   flags it: from there on the tokens are not new any more).
--
-- At the end the script prints one line for bench/run.sh:
--   tokens: used=N wraps=W
-- (used = requests generated, including those still in flight at the end).

-- Globals, so that done() can read them from the thread (thread:get).
used = 0
wraps = 0

local mode, path, skip
local reqs, n, i = {}, 0, 0
local file

local function request_for(token)
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
end

function init(args)
  path = args[1]
  mode = args[2] or "cycle"
  skip = tonumber(args[3] or "0") or 0
  assert(path, "usage: -s tokens.lua URL -- FILE [cycle|once] [SKIP]")
  if mode == "cycle" then
    for line in io.lines(path) do
      if #line > 0 then
        n = n + 1
        reqs[n] = request_for(line)
      end
    end
    assert(n > 0, "no tokens in " .. path)
  elseif mode == "once" then
    file = assert(io.open(path, "r"))
    for _ = 1, skip do
      if not file:read("*l") then
        break
      end
    end
  else
    error("unknown mode " .. tostring(mode) .. " (cycle or once)")
  end
end

function request()
  used = used + 1
  if mode == "cycle" then
    i = i % n + 1
    return reqs[i]
  end
  local line = file:read("*l")
  if not line or #line == 0 then
    wraps = wraps + 1
    file:seek("set", 0)
    line = file:read("*l")
  end
  return request_for(line)
end

-- setup() and done() run in wrk's main Lua state, not in the threads'.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local u, w = 0, 0
  for _, t in ipairs(threads) do
    u = u + (t:get("used") or 0)
    w = w + (t:get("wraps") or 0)
  end
  io.write(string.format("tokens: used=%d wraps=%d\n", u, w))
end
