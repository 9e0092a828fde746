-- POST /v1/check {"jti": ...} with 4096 random jtis per thread (all "not revoked": the hot path),
-- or, with BATCH=N in the environment, POST /v1/check/batch with N random jtis per request
-- (64 different bodies per thread).
-- usage: [BATCH=1000] wrk -t2 -c50 -d10s -s check.lua http://127.0.0.1:8080
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "report.lua")
local requests, i = {}, 0
function init(args)
  seed()
  local headers = json_headers()
  local batch = tonumber(os.getenv("BATCH") or "0")
  if batch > 0 then
    for n = 1, 64 do
      local checks = {}
      for k = 1, batch do checks[k] = '{"jti":"' .. random_jti() .. '"}' end
      requests[n] = wrk.format("POST", "/v1/check/batch", headers, '{"checks":[' .. table.concat(checks, ",") .. ']}')
    end
  else
    for n = 1, 4096 do
      requests[n] = wrk.format("POST", "/v1/check", headers, '{"jti":"' .. random_jti() .. '"}')
    end
  end
end
function request() i = i % #requests + 1; return requests[i] end
done = report_done
