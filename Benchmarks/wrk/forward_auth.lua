-- GET <FORWARD_PATH> (default /v1/forward-auth) with each token of TOKENS_FILE (one per line)
-- as Authorization: Bearer in turn, and the gateway's key from REVOKE_GATEWAY_KEY as
-- Revoke-Key when it is set: a gateway forwarding the requests of a repeating set of sessions.
-- usage: TOKENS_FILE=tokens.txt REVOKE_GATEWAY_KEY=... wrk -t2 -c50 -d10s -s forward_auth.lua http://127.0.0.1:8080
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "report.lua")
local requests, i = {}, 0
function init(args)
  local path = os.getenv("FORWARD_PATH") or "/v1/forward-auth"
  local key = os.getenv("REVOKE_GATEWAY_KEY")
  for token in io.lines(os.getenv("TOKENS_FILE")) do
    local headers = { ["Authorization"] = "Bearer " .. token }
    if key then headers["Revoke-Key"] = key end
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  -- Each thread starts at another place in the set.
  seed()
  i = math.random(0, #requests - 1)
end
function request() i = i % #requests + 1; return requests[i] end
done = report_done
