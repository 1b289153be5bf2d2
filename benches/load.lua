-- wrk script for benches/load.sh: the request mix, and a summary with any
-- percentile. The client token comes from LOAD_TOKEN (sent as PRIVATE-TOKEN).
--
-- Mix (of 10): 3 project by id (2 KiB answer), 3 merge-request lists with
-- query params (32 KiB), 2 projects by encoded path (2 KiB), 2 refused
-- (DELETE on a project; a repository file). Through glgate and nginx the
-- refused ones get 403; direct to the upstream, 404.

local token = os.getenv("LOAD_TOKEN") or "none"
local calls = {
  { "GET", "/api/v4/projects/101" },
  { "GET", "/api/v4/projects/101/merge_requests?state=opened&per_page=20" },
  { "GET", "/api/v4/projects/acme%2Fbackend" },
  { "GET", "/api/v4/projects/102" },
  { "GET", "/api/v4/projects/102/merge_requests?state=opened&per_page=20&order_by=updated_at" },
  { "DELETE", "/api/v4/projects/101" },
  { "GET", "/api/v4/projects/103" },
  { "GET", "/api/v4/projects/103/merge_requests?state=merged&per_page=20&page=2" },
  { "GET", "/api/v4/projects/acme%2Ffrontend" },
  { "GET", "/api/v4/projects/101/repository/files/config%2Fsecrets.yml/raw?ref=main" },
}


local threads = {}
function setup(thread)
  thread:set("offset", #threads * 3)
  table.insert(threads, thread)
end

function init(args)
  counter = offset or 0
  statuses = {}
  -- Built here, not at load time: wrk sets the Host header only by now
  -- (nginx answers 400 to an HTTP/1.1 request without one).
  requests = {}
  for i, call in ipairs(calls) do
    requests[i] = wrk.format(call[1], call[2], { ["PRIVATE-TOKEN"] = token, ["Host"] = wrk.host .. ":" .. wrk.port })
  end
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests_done)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("requests: %d\n", summary.requests))
  io.write(string.format("rps: %.0f\n", summary.requests / seconds))
  io.write(string.format("p50_us: %d\n", latency:percentile(50)))
  io.write(string.format("p99_us: %d\n", latency:percentile(99)))
  io.write(string.format("p999_us: %d\n", latency:percentile(99.9)))
  io.write(string.format("socket_errors: %d\n", errors))
  local parts = {}
  for status, count in pairs(totals) do
    table.insert(parts, string.format("%d=%d", status, count))
  end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, ",") .. "\n")
end
