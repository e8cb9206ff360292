-- wrk script for bench/compare-express.sh.
--   COOKIES=file  each request carries one of its cookies ("connect.sid=..."
--                 per line), in turn; without it, no cookie
--   WRK_PATH      the request path (/api/user/counter)
--   WRK_UA        the User-Agent (a desktop Chrome)
-- done() prints "status CODE COUNT" for every status code seen, and
-- "errors connect/read/write/timeout" as wrk counted them.
local path = os.getenv("WRK_PATH") or "/api/user/counter"
local ua = os.getenv("WRK_UA") or
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local cookies = {}
local i = 0
statuses = {}

function init(args)
  local file = os.getenv("COOKIES")
  if file and #file > 0 then
    for line in io.lines(file) do
      if #line > 0 then cookies[#cookies + 1] = line end
    end
  end
  if #cookies > 0 then i = (id * 7919) % #cookies end
end

function request()
  local headers = { ["User-Agent"] = ua, ["Accept"] = "application/json" }
  if #cookies > 0 then
    i = i % #cookies + 1
    headers["Cookie"] = cookies[i]
  end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
  end
  for code, n in pairs(total) do io.write(string.format("status %d %d\n", code, n)) end
  local e = summary.errors
  io.write(string.format("errors %d/%d/%d/%d\n", e.connect, e.read, e.write, e.timeout))
end
