-- POST /oauth2/introspect of one valid token (form-encoded), from REVOKE_TOKEN: the signature
-- verified and the token checked on every request.
-- usage: REVOKE_TOKEN=eyJ... wrk -t2 -c50 -d10s -s introspect.lua http://127.0.0.1:8080
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "report.lua")
local body
function init(args)
  body = "token=" .. (os.getenv("REVOKE_TOKEN") or "")
end
function request()
  return wrk.format("POST", "/oauth2/introspect", { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
done = report_done
