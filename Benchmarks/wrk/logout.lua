-- POST /v1/revoke with the same valid token 16 times a request, as fast as it goes: the holder
-- of one token replaying its logout (each copy is a repeat, which changes nothing). The token
-- comes from REVOKE_TOKEN.
-- usage: REVOKE_TOKEN=eyJ... wrk -t1 -c4 -d10s -s logout.lua http://127.0.0.1:8080
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "report.lua")
local body
function init(args)
  local token = '"' .. (os.getenv("REVOKE_TOKEN") or "") .. '"'
  local copies = {}
  for k = 1, 16 do copies[k] = token end
  body = '{"tokens":[' .. table.concat(copies, ",") .. ']}'
end
function request()
  return wrk.format("POST", "/v1/revoke", { ["Content-Type"] = "application/json" }, body)
end
done = report_done
