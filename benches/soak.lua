-- wrk script for benches/soak.sh: a mix of allowed and refused Echoes calls
-- through glgate, counting statuses so that unexpected ones are reported.
-- The client token comes from the GLGATE_TOKEN environment variable.

local token = os.getenv("GLGATE_TOKEN")
local calls = {
  -- allowed (expect 200)
  { "GET", "/api/v4/projects/101", 200 },
  { "GET", "/api/v4/projects/acme%2Fbackend", 200 },
  { "GET", "/api/v4/projects/101/merge_requests?state=opened&per_page=20", 200 },
  { "GET", "/api/v4/groups/acme/projects?per_page=20&page=2", 200 },
  { "GET", "/api/v4/user", 200 },
  { "GET", "/api/v4/projects/101/merge_requests/1", 200 },
  -- refused by policy (expect 403) or as malformed (expect 400)
  { "GET", "/api/v4/projects/101/repository/files/README.md?ref=main", 403 },
  { "DELETE", "/api/v4/projects/101", 403 },
  { "GET", "/api/v4/projects/acme%2F..%2Fsecret%2Fvault", 400 },
  { "GET", "/api/v4/user?sudo=root", 400 },
}

local requests = {}
local expected = {}
for i, call in ipairs(calls) do
  requests[i] = wrk.format(call[1], call[2], { ["PRIVATE-TOKEN"] = token })
  expected[call[3]] = true
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  statuses = {}
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
  local unexpected = 0
  for status, count in pairs(totals) do
    io.write(string.format("status %d: %d\n", status, count))
    if not expected[status] then unexpected = unexpected + count end
  end
  local e = summary.errors
  io.write(string.format("requests: %d\n", summary.requests))
  io.write(string.format("socket_errors: %d\n", e.connect + e.read + e.write + e.timeout))
  io.write(string.format("unexpected_statuses: %d\n", unexpected))
  io.write(string.format("rps: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("p50_ms: %.2f\np99_ms: %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
