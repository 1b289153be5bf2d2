#!/usr/bin/env bash
# Deterministic cost of a request: instructions executed by glgate per request
# of the benchmark mix (benches/load.lua), counted by valgrind's callgrind.
# Unlike wall-clock figures this does not move with the machine's other load,
# so it is the before/after measure for a change on the hot path.
#
#   benches/callgrind.sh               # 2,000 measured requests after 200 of warm-up
#   CALLGRIND_REQUESTS=5000 CALLGRIND_AUDIT=/dev/null benches/callgrind.sh
#   CALLGRIND_SCOPED=1 benches/callgrind.sh   # the client scoped to group acme
#
# The setup is load.sh's: examples/bench_upstream as the upstream,
# policies/echoes.yaml, audit to a file (CALLGRIND_AUDIT=/dev/null to leave
# the file system out), a rate limit too high to bite. One client
# (benches/callgrind_client.py) sends the mix over one keep-alive HTTP/1.1
# connection, one request at a time, and checks every status (8 in 10 answered
# 200, 2 in 10 refused 403); any other answer fails the run. Counting starts
# after the warm-up (callgrind_control --zero) and ends with a dump, so
# start-up, configuration loading and shutdown are not in the figure.
#
# Prints "Ir per request" (all of glgate's threads, the audit writer included)
# and the top functions by inclusive and self cost; the dump stays in
# target/callgrind/ for callgrind_annotate or kcachegrind.
#
# Installs valgrind from Debian's packages when missing (needs root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests=${CALLGRIND_REQUESTS:-2000}
warmup=${CALLGRIND_WARMUP:-200}
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
cargo build --release --locked --quiet --bin glgate --example bench_upstream

out=target/callgrind
mkdir -p "$out"
rm -f "$out"/callgrind.out.*
work=$(mktemp -d)
audit=${CALLGRIND_AUDIT:-$work/audit.log}
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
wait_for() { # FILE PATTERN
    for _ in $(seq 1200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

target/release/examples/bench_upstream 127.0.0.1:0 1 >"$work/upstream.out" 2>&1 &
pids+=($!)
wait_for "$work/upstream.out" "listening at"
upstream_addr=$(sed -n 's/^listening at http:\/\///p' "$work/upstream.out")

printf 'glpat-callgrind-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/gitlab-token"
client_token=$(target/release/glgate client new bench | sed -n 's/^  \(glg_[0-9a-f]*\)$/\1/p')
digest=$(printf '%s' "$client_token" | sha256sum | cut -d' ' -f1)
cp policies/echoes.yaml "$work/echoes.yaml"
cat >"$work/glgate.yaml" <<YAML
version: 1
listen: 127.0.0.1:0
upstream:
  url: http://$upstream_addr
  token_file: gitlab-token
clients:
  - name: bench
    token_sha256: "$digest"
    policy: echoes.yaml
    rate_limit: { per_second: 100000000, burst: 100000000 }
${CALLGRIND_SCOPED:+    scope: { groups: [acme] }}
audit:
  output: $audit
YAML

# --collect-atstart=no would also leave out the warm-up, but zeroing after it
# is simpler to reason about: one dump, taken when the measured requests end.
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
    target/release/glgate serve --config "$work/glgate.yaml" 2>"$work/glgate.err" &
glgate_pid=$!
pids+=("$glgate_pid")
wait_for "$work/glgate.err" "glgate is serving"
glgate_addr=$(sed -n 's/.*listen=\([0-9.:]*\).*/\1/p' "$work/glgate.err" | head -n 1)

python3 benches/callgrind_client.py "$glgate_addr" "$client_token" "$warmup" >&2
callgrind_control --zero "$glgate_pid" >/dev/null
python3 benches/callgrind_client.py "$glgate_addr" "$client_token" "$requests" >&2
callgrind_control --dump=measured "$glgate_pid" >/dev/null
kill "$glgate_pid"
wait "$glgate_pid" 2>/dev/null || true

dump=$(ls -t "$out"/callgrind.out.*.* 2>/dev/null | head -n 1)
[[ -n $dump ]] || { echo "no callgrind dump in $out" >&2; exit 1; }
total=$(sed -n 's/^summary: //p; s/^totals: //p' "$dump" | head -n 1 | cut -d' ' -f1)
echo "callgrind: $requests requests of the load.lua mix, audit to ${CALLGRIND_AUDIT:-a file},${CALLGRIND_SCOPED:+ client scoped to group acme,} dump $dump"
awk -v t="$total" -v n="$requests" 'BEGIN { printf "Ir per request: %.0f (total %d Ir)\n", t / n, t }'
# Per-function figures, in Ir per request. Frames already running when the
# counters were zeroed (thread starts, the runtime's loops) show the whole
# total even as "self" cost: read past them.
per_request() { # callgrind_annotate output -> "Ir/request  function", the first $1 functions
    # Reads all of its input (no `head`): a closed pipe would fail the script under pipefail.
    sed -n 's/^ *\([0-9,]*\) ([ 0-9.]*%)  *\(.*\)$/\1 \2/p' | sed 's/ \[[^]]*\]$//' |
        awk -v n="$requests" -v max="$1" 'NR <= max { c = $1; gsub(",", "", c); $1 = ""; printf "%10.0f %s\n", c / n, $0 }'
}
echo
echo "Top functions by inclusive cost (Ir per request):"
callgrind_annotate --threshold=100 --inclusive=yes "$dump" | per_request 45
echo
echo "Top functions by self cost (Ir per request):"
callgrind_annotate --threshold=100 --inclusive=no "$dump" | per_request 45
