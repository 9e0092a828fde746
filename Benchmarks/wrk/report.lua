-- Shared by the wrk scripts (loaded with dofile). done(): one parseable line per run, read by
-- HTTPBenchmark.
function report_done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f reqs=%d non2xx=%d sock_err=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests / s, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout))
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- A random 22-character base64url jti (128 bits, like a UUID), almost surely not revoked.
function random_jti()
  local t = {}
  for k = 1, 22 do local c = math.random(1, 64); t[k] = alphabet:sub(c, c) end
  return table.concat(t)
end

function seed()
  math.randomseed(os.time() + math.floor(os.clock() * 1e6) + tonumber(tostring({}):sub(8), 16) % 100000)
end

-- JSON request headers, with the verifier key from REVOKE_VERIFIER_KEY when it is set.
function json_headers()
  local headers = { ["Content-Type"] = "application/json" }
  if os.getenv("REVOKE_VERIFIER_KEY") then headers["Authorization"] = "Bearer " .. os.getenv("REVOKE_VERIFIER_KEY") end
  return headers
end

-- With DELAY_MS in the environment, each connection waits that long before its next request:
-- a paced load rather than the most the server takes (make soak). wrk calls delay() only when
-- the script defines it, and waits whole milliseconds: a fractional DELAY_MS is met on average,
-- each wait rounded down or up at random.
if os.getenv("DELAY_MS") then
  local pause = tonumber(os.getenv("DELAY_MS"))
  function delay() return math.floor(pause + math.random()) end
end
