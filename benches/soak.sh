#!/usr/bin/env bash
# Load and soak: drives at least 100,000 requests at 256 concurrent
# connections through glgate (release build, shipped Echoes policy, audit
# log to a file) to the fake GitLab, mixing allowed and refused calls, in
# several rounds. Reports errors beyond the expected refusals, throughput,
# p50/p99 latency, and glgate's resident memory before, between and after the
# rounds (it must not grow round over round).
#
#   benches/soak.sh [ROUNDS] [SECONDS_PER_ROUND]     (default: 3 rounds of 20 s)
#
# Installs wrk from Debian's packages when it is missing (needs root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
seconds=${2:-20}

if ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked --quiet --bin glgate -p glgate
cargo build --release --locked --quiet -p fake-gitlab --example serve

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

target/release/examples/serve --no-record >"$work/fake.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening at" "$work/fake.out" 2>/dev/null && break; sleep 0.1; done
gitlab_url=$(sed -n 's/^fake GitLab listening at //p' "$work/fake.out")
sed -n 's/^token: //p' "$work/fake.out" >"$work/gitlab-token"

token=$(target/release/glgate client new soak | sed -n 's/^  \(glg_[0-9a-f]*\)$/\1/p')
digest=$(python3 -c "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())" "$token")
cp policies/echoes.yaml "$work/echoes.yaml"
cat >"$work/glgate.yaml" <<YAML
version: 1
listen: 127.0.0.1:0
upstream:
  url: $gitlab_url
  token_file: gitlab-token
clients:
  - name: soak
    token_sha256: "$digest"
    policy: echoes.yaml
    rate_limit: { per_second: 1000000, burst: 1000000 }
audit:
  output: audit.log
YAML
target/release/glgate serve --config "$work/glgate.yaml" 2>"$work/glgate.err" &
glgate_pid=$!
pids+=("$glgate_pid")
for _ in $(seq 100); do grep -q "glgate is serving" "$work/glgate.err" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*listen=\([0-9.:]*\).*/\1/p' "$work/glgate.err" | head -n 1)

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$glgate_pid/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$glgate_pid/status"; }

echo "glgate $addr (pid $glgate_pid) -> fake GitLab $gitlab_url"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "round rss_before_kib requests rps p50_ms p99_ms socket_errors unexpected_statuses rss_after_kib"
total=0
failed=0
for round in $(seq "$rounds"); do
    before=$(rss_kib)
    GLGATE_TOKEN=$token wrk -t2 -c256 -d"${seconds}s" --timeout 10s -s benches/soak.lua "http://$addr" >"$work/wrk.$round" 2>&1
    after=$(rss_kib)
    get() { sed -n "s/^$1: //p" "$work/wrk.$round"; }
    echo "$round $before $(get requests) $(get rps) $(get p50_ms) $(get p99_ms) $(get socket_errors) $(get unexpected_statuses) $after"
    total=$((total + $(get requests)))
    failed=$((failed + $(get socket_errors) + $(get unexpected_statuses)))
done
echo "statuses of the last round:"; grep '^status' "$work/wrk.$rounds" | sort
echo "total requests: $total; errors beyond expected refusals: $failed; peak RSS: $(hwm_kib) KiB"
echo "audit lines written: $(wc -l <"$work/audit.log")"
if grep -qF "$(cat "$work/gitlab-token")" "$work/audit.log" "$work/glgate.err"; then
    echo "FAIL: the GitLab token appears in glgate's output"; exit 1
fi
[[ $total -ge 100000 && $failed -eq 0 ]] || { echo "FAIL"; exit 1; }
echo "ok"
