-- POST /v1/revocations of random jtis, each a new change to the log: a flood of revocations.
-- The admin key comes from REVOKE_ADMIN_KEY.
-- usage: REVOKE_ADMIN_KEY=k wrk -t1 -c4 -d10s -s revoke.lua http://127.0.0.1:8080
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "report.lua")
local headers
function init(args)
  seed()
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. (os.getenv("REVOKE_ADMIN_KEY") or "") }
end
function request()
  return wrk.format("POST", "/v1/revocations", headers, '{"jti":"' .. random_jti() .. '","expires_at":' .. (os.time() + 3600) .. '}')
end
done = report_done
