-- GET a 20-byte file: the HTTP ceiling of the machine when nginx serves it.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "report.lua")
local req
function init(args) req = wrk.format("GET", "/20b.txt") end
function request() return req end
done = report_done
