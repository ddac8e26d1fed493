-- POST a small JSON event; count answers by status; print a JSON summary at the end.
-- A throttled (429) connection waits BACKOFF_MS before its next request, as an SDK backs
-- off before retrying; wrk calls response() then delay() for the same connection.
wrk.method = "POST"
wrk.body = '{"message": "hello", "n": 42, "items": [1, 2, 3]}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  throttled = 0
  other = 0
  last_status = 200
  backoff_ms = tonumber(args[1] or "0")
  -- Further arguments are headers, "Name: value" (a SigV4 signature of this very request:
  -- same method, path, host and body every time, valid for 5 minutes).
  for i = 2, #args do
    local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
    if name then
      wrk.headers[name] = value
    end
  end
  req = wrk.format()
end

function request()
  return req
end

function delay()
  if last_status == 429 then
    return backoff_ms
  end
  return 0
end

function response(status, headers, body)
  last_status = status
  if status == 200 then
    ok = ok + 1
  elseif status == 429 then
    throttled = throttled + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_throttled, total_other = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_throttled = total_throttled + thread:get("throttled")
    total_other = total_other + thread:get("other")
  end
  io.write(string.format(
    'RESULT {"duration_us": %d, "requests": %d, "ok": %d, "throttled": %d, "other": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.duration, summary.requests, total_ok, total_throttled, total_other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
