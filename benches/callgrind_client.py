#!/usr/bin/env python3
"""Client for benches/callgrind.sh: sends COUNT requests of benches/load.lua's
mix to glgate at ADDR over one keep-alive HTTP/1.1 connection, one at a time,
and fails unless every answer is the mix's (200 for the allowed, 403 for the
refused). One connection and one request in flight keep the work glgate does
the same from run to run, which is what makes the instruction count stable.

usage: callgrind_client.py ADDR TOKEN COUNT
"""
import http.client
import sys

# The order and the expected answers of benches/load.lua (keep in step).
CALLS = [
    ("GET", "/api/v4/projects/101", 200),
    ("GET", "/api/v4/projects/101/merge_requests?state=opened&per_page=20", 200),
    ("GET", "/api/v4/projects/acme%2Fbackend", 200),
    ("GET", "/api/v4/projects/102", 200),
    ("GET", "/api/v4/projects/102/merge_requests?state=opened&per_page=20&order_by=updated_at", 200),
    ("DELETE", "/api/v4/projects/101", 403),
    ("GET", "/api/v4/projects/103", 200),
    ("GET", "/api/v4/projects/103/merge_requests?state=merged&per_page=20&page=2", 200),
    ("GET", "/api/v4/projects/acme%2Ffrontend", 200),
    ("GET", "/api/v4/projects/101/repository/files/config%2Fsecrets.yml/raw?ref=main", 403),
]


def main():
    addr, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    statuses = {}
    for i in range(count):
        method, path, want = CALLS[i % len(CALLS)]
        conn.request(method, path, headers={"PRIVATE-TOKEN": token})
        response = conn.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status != want:
            sys.exit(f"callgrind_client: {method} {path} answered {response.status}, expected {want}; "
                     f"statuses so far {statuses}")
    print(f"callgrind_client: {count} requests, statuses {dict(sorted(statuses.items()))}")


if __name__ == "__main__":
    main()
