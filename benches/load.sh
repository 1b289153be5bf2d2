#!/usr/bin/env bash
# Side-by-side load benchmark: glgate against nginx doing the same job, and
# against no proxy at all, on this machine, in one run.
#
#   benches/load.sh                    # 2 rounds of 10 s per setup and load
#   LOAD_ROUNDS=3 LOAD_SECONDS=20 LOAD_CONNECTIONS="64 256" benches/load.sh
#
# Setups, alternated (the order rotates every round, so that drift in the
# machine's load spreads evenly over them):
#   direct        wrk -> upstream
#   nginx         wrk -> nginx (allowlist equivalent to policies/echoes.yaml,
#                 see benches/nginx.conf.sh; one access line per request) -> upstream
#   glgate        wrk -> glgate (policies/echoes.yaml, audit to a file) -> upstream
#   glgate-devnull  the same with the audit lines written to /dev/null
#   glgate-scoped   glgate with the client scoped to group acme (every project the
#                 mix names is in it; scope cache warm after the first requests)
#   glgate-baseline only with LOAD_BASELINE=PATH: the glgate binary at PATH (an
#                 earlier build) set up as `glgate`, for a before/after in one run
# The upstream is examples/bench_upstream.rs (fixed JSON bodies of 2 KiB and
# 32 KiB, one thread). The request mix is benches/load.lua (allowed GETs of a
# project by id, by encoded path, merge-request lists with query params, and
# 20% refused requests). nginx runs as many workers as glgate has runtime
# threads (the core count).
#
# Reported per setup and load: requests/s, p50/p99/p99.9 latency, the proxy's
# CPU seconds per 10k requests (utime+stime of all its threads or workers,
# from /proc), its peak RSS (VmRSS sampled every 100 ms; nginx: master plus
# workers), and the ratios glgate/nginx and glgate/direct. Then each proxy's
# RSS with 1,000 idle keep-alive client connections (examples/idle_clients.rs;
# glgate freshly started). The Markdown summary goes to stdout and to
# target/load/summary.md, the raw samples to target/load/raw.tsv.
#
# Every run's status counts are printed and checked against the mix (see
# check_mix): a run with 429s, 5xx or a refused share other than the mix's
# stops the benchmark with an error instead of a figure.
#
# Installs nginx and wrk from Debian's packages when missing (needs root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${LOAD_ROUNDS:-2}
seconds=${LOAD_SECONDS:-10}
connections=${LOAD_CONNECTIONS:-"1 64 256"}
idle_count=${LOAD_IDLE:-1000}
cores=$(nproc)

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx)
cargo build --release --locked --quiet --bin glgate --example bench_upstream --example idle_clients
# 1,000 idle clients plus the proxy: raise the soft limit as far as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

out=target/load
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # FILE PATTERN
    for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

# --- upstream ---------------------------------------------------------------
target/release/examples/bench_upstream 127.0.0.1:0 1 >"$work/upstream.out" 2>&1 &
upstream_pid=$!
pids+=("$upstream_pid")
wait_for "$work/upstream.out" "listening at"
upstream_addr=$(sed -n 's/^listening at http:\/\///p' "$work/upstream.out")
upstream_port=${upstream_addr##*:}

# --- glgate -----------------------------------------------------------------
gitlab_token=glpat-bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$gitlab_token" >"$work/gitlab-token"
client_token=$(target/release/glgate client new bench | sed -n 's/^  \(glg_[0-9a-f]*\)$/\1/p')
digest=$(printf '%s' "$client_token" | sha256sum | cut -d' ' -f1)
cp policies/echoes.yaml "$work/echoes.yaml"

start_glgate() { # NAME AUDIT_OUTPUT [BINARY] [SCOPE] -> sets glgate_pid, glgate_addr
    local name=$1 audit=$2 binary=${3:-target/release/glgate} scope=${4:+    scope: $4}
    cat >"$work/$name.yaml" <<YAML
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
$scope
audit:
  output: $audit
limits:
  max_connections: 4096
YAML
    "$binary" serve --config "$work/$name.yaml" 2>"$work/$name.err" &
    glgate_pid=$!
    pids+=("$glgate_pid")
    wait_for "$work/$name.err" "glgate is serving"
    glgate_addr=$(sed -n 's/.*listen=\([0-9.:]*\).*/\1/p' "$work/$name.err" | head -n 1)
}
start_glgate glgate "$work/audit.log"
declare -A addr pid_of
addr[glgate]=$glgate_addr
pid_of[glgate]=$glgate_pid
start_glgate glgate-devnull /dev/null
addr[glgate-devnull]=$glgate_addr
pid_of[glgate-devnull]=$glgate_pid
start_glgate glgate-scoped "$work/audit-scoped.log" target/release/glgate "{ groups: [acme] }"
addr[glgate-scoped]=$glgate_addr
pid_of[glgate-scoped]=$glgate_pid
setups=(direct nginx glgate glgate-devnull glgate-scoped)
if [[ -n ${LOAD_BASELINE:-} ]]; then
    start_glgate glgate-baseline "$work/audit-baseline.log" "$LOAD_BASELINE"
    addr[glgate-baseline]=$glgate_addr
    pid_of[glgate-baseline]=$glgate_pid
    setups+=(glgate-baseline)
fi

# --- nginx ------------------------------------------------------------------
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bash benches/nginx.conf.sh "$work" "$nginx_port" "$upstream_port" "$client_token" "$gitlab_token" "$cores" >"$work/nginx.conf"
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log" &
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break
    sleep 0.05
done
addr[nginx]=127.0.0.1:$nginx_port
pid_of[nginx]=$nginx_pid
addr[direct]=$upstream_addr
pid_of[direct]=$upstream_pid

# The same answers through every proxy: a quick sanity check of the setups.
for setup in nginx glgate glgate-scoped; do
    for check in "GET /api/v4/projects/acme%2Fbackend 200" "GET /api/v4/projects/101/merge_requests?state=opened 200" \
        "DELETE /api/v4/projects/101 403" "GET /api/v4/projects/101/repository/files/a/raw 403" \
        "GET /api/v4/user?sudo=root 400"; do
        read -r method path want <<<"$check"
        got=$(curl -s -o /dev/null -w '%{http_code}' -X "$method" -H "PRIVATE-TOKEN: $client_token" "http://${addr[$setup]}$path")
        [[ $got == "$want" ]] || { echo "$setup: $method $path gave $got, expected $want" >&2; exit 1; }
    done
done

# --- measuring --------------------------------------------------------------
tck=$(getconf CLK_TCK)
family() { # PID -> the pid and its children's pids (nginx workers)
    echo "$1"
    cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d'
}
cpu_ticks() { # PIDS... -> utime+stime summed
    local total=0 pid
    for pid in "$@"; do
        read -r -a stat <"/proc/$pid/stat"
        # Fields 14 and 15 (utime, stime) counted after the ")" of the command name.
        total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}
audit_ticks() { # PID -> utime+stime of its glgate-audit thread (0 if none)
    local task total=0
    for task in /proc/"$1"/task/*; do
        [[ $(cat "$task/comm" 2>/dev/null) == glgate-audit ]] || continue
        total=$((total + $(sed 's/^.*) //' "$task/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}
rss_kib() { # PIDS... -> VmRSS summed
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
sample_peak() { # FILE PIDS... : writes the peak summed VmRSS until killed
    local file=$1 peak=0 now
    shift
    while true; do
        now=$(rss_kib "$@")
        ((now > peak)) && { peak=$now; echo "$peak" >"$file"; }
        sleep 0.1
    done
}

# A figure is valid only if the requests were answered as the mix says: through
# a proxy 8 in 10 allowed (200) and 2 in 10 refused (403); direct, the bench
# upstream answers 200 to the DELETE of a project (it ignores methods) and 404
# to the file read, so 9 in 10 and 1 in 10. Anything else (429s from a rate limit, 502s, 401s from a wrong token)
# means the run measured something cheaper or dearer than the job, so the run
# stops here, loudly, instead of reporting it. The refused share may drift from
# 20% only by in-flight requests cut at the end of the run and by how wrk's
# threads interleave: LOAD_MIX_TOLERANCE (percentage points, default 1).
mix_tolerance=${LOAD_MIX_TOLERANCE:-1}
check_mix() { # SETUP CONNECTIONS STATUSES REQUESTS
    local setup=$1 conns=$2 statuses=$3 requests=$4 refused_status=403 refused_share=20
    [[ $setup == direct ]] && { refused_status=404; refused_share=10; }
    echo "  $setup at $conns connections: statuses $statuses of $requests requests" >&2
    python3 - "$statuses" "$requests" "$refused_status" "$mix_tolerance" "$refused_share" <<'PY' || {
import sys
statuses, requests, refused, tolerance = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
expected = float(sys.argv[5])
counts = dict(part.split("=") for part in statuses.split(",") if part)
counts = {k: int(v) for k, v in counts.items()}
unexpected = {k: v for k, v in counts.items() if k not in ("200", refused)}
answered = sum(counts.values())
problems = []
if unexpected:
    problems.append(f"unexpected statuses {unexpected} (expected only 200 and {refused})")
if answered == 0 or requests == 0:
    problems.append("no answers counted")
else:
    share = 100 * counts.get(refused, 0) / answered
    if abs(share - expected) > tolerance:
        problems.append(f"{refused} share {share:.2f}% (expected {expected:g}% +- {tolerance})")
    if abs(answered - requests) > max(1, requests // 1000):
        problems.append(f"{answered} answers counted for {requests} requests")
if problems:
    print("; ".join(problems), file=sys.stderr)
    sys.exit(1)
PY
        echo "load.sh: REFUSING TO REPORT: $setup at $conns connections did not answer the expected mix" \
            "(statuses $statuses); the figures would not measure the job" >&2
        exit 1
    }
}

raw=$out/raw.tsv
printf 'round\tsetup\tconnections\trequests\trps\tp50_us\tp99_us\tp999_us\tcpu_s_per_10k\tpeak_rss_kib\tsocket_errors\tstatuses\taudit_cpu_share\n' >"$raw"
machine="$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "machine: $machine" >&2
echo "versions: $("$nginx_bin" -v 2>&1), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), $(target/release/glgate --version 2>/dev/null || echo glgate)" >&2

for round in $(seq "$rounds"); do
    for conns in $connections; do
        threads=$((conns < cores ? conns : cores))
        # Rotate the order every round.
        order=("${setups[@]:$(( (round - 1) % ${#setups[@]} ))}" "${setups[@]:0:$(( (round - 1) % ${#setups[@]} ))}")
        for setup in "${order[@]}"; do
            mapfile -t procs < <(family "${pid_of[$setup]}")
            before=$(cpu_ticks "${procs[@]}")
            audit_before=$(audit_ticks "${pid_of[$setup]}")
            echo 0 >"$work/peak"
            sample_peak "$work/peak" "${procs[@]}" &
            sampler=$!
            LOAD_TOKEN=$client_token wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 10s \
                -s benches/load.lua "http://${addr[$setup]}" >"$work/wrk.out" 2>&1
            kill "$sampler"; wait "$sampler" 2>/dev/null || true
            after=$(cpu_ticks "${procs[@]}")
            audit_after=$(audit_ticks "${pid_of[$setup]}")
            share=$(awk -v a=$((audit_after - audit_before)) -v t=$((after - before)) 'BEGIN { printf "%.3f", t ? a / t : 0 }')
            get() { sed -n "s/^$1: //p" "$work/wrk.out"; }
            requests=$(get requests)
            check_mix "$setup" "$conns" "$(get statuses)" "$requests"
            cpu=$(awk -v t=$((after - before)) -v hz="$tck" -v n="$requests" 'BEGIN { printf "%.3f", (t / hz) / (n / 10000) }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$setup" "$conns" "$requests" \
                "$(get rps)" "$(get p50_us)" "$(get p99_us)" "$(get p999_us)" "$cpu" "$(cat "$work/peak")" \
                "$(get socket_errors)" "$(get statuses)" "$share" | tee -a "$raw" >&2
        done
    done
done

# --- 1,000 idle keep-alive connections ----------------------------------------
idle_rss() { # NAME ADDR PIDS... -> "before peak held" in KiB, then the tool's line
    local name=$1 target_addr=$2
    shift 2
    local before peak held
    before=$(rss_kib "$@")
    echo 0 >"$work/peak"
    sample_peak "$work/peak" "$@" &
    local sampler=$!
    target/release/examples/idle_clients "$target_addr" "$idle_count" /api/v4/projects/101 "$client_token" 6 >"$work/idle.$name" 2>&1 &
    local clients=$!
    wait_for "$work/idle.$name" "^open"
    sleep 3
    held=$(rss_kib "$@")
    wait "$clients" || true
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
    peak=$(cat "$work/peak")
    echo "$before $peak $held $(head -n 1 "$work/idle.$name")"
}
start_glgate glgate-idle "$work/audit-idle.log"
idle_glgate=$(idle_rss glgate "$glgate_addr" "$glgate_pid")
mapfile -t nginx_procs < <(family "$nginx_pid")
idle_nginx=$(idle_rss nginx "127.0.0.1:$nginx_port" "${nginx_procs[@]}")

# Every request through glgate has its audit line.
audit_lines=$(wc -l <"$work/audit.log")

python3 - "$raw" "$idle_glgate" "$idle_nginx" "$machine" "$rounds" "$seconds" "$audit_lines" "${setups[*]}" <<'PY' | tee "$out/summary.md"
import csv, sys, statistics, datetime
raw, idle_glgate, idle_nginx, machine, rounds, seconds, audit_lines, setups = sys.argv[1:]
setups = setups.split()
rows = list(csv.DictReader(open(raw), delimiter="\t"))
def mean(setup, conns, key):
    values = [float(r[key]) for r in rows if r["setup"] == setup and r["connections"] == conns]
    return statistics.mean(values) if values else float("nan")
def peak(setup, conns):
    # Round 1 runs the loads in rising order on fresh processes; later rounds
    # would show memory kept from the heavier loads before them.
    return max(int(r["peak_rss_kib"]) for r in rows if r["setup"] == setup and r["connections"] == conns and r["round"] == "1")
loads = sorted({r["connections"] for r in rows}, key=int)
print(f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine}; "
      f"{rounds} rounds of {seconds} s per setup and load, setups alternated; means over rounds.\n")
print("| connections | setup | req/s | p50 ms | p99 ms | p99.9 ms | CPU s / 10k req | peak RSS MiB (round 1) | errors |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for c in loads:
    for s in setups:
        errors = sum(int(r["socket_errors"]) for r in rows if r["setup"] == s and r["connections"] == c)
        print(f"| {c} | {s} | {mean(s,c,'rps'):,.0f} | {mean(s,c,'p50_us')/1000:.2f} | {mean(s,c,'p99_us')/1000:.2f} | "
              f"{mean(s,c,'p999_us')/1000:.2f} | {mean(s,c,'cpu_s_per_10k'):.3f} | {peak(s,c)/1024:.1f} | {errors} |")
print("\n(direct: CPU and RSS are the upstream's; the file read gets the upstream's 404 there, "
      "the DELETE its 200.)\n")
def ratio(a, b, c, key):
    return mean(a, c, key) / mean(b, c, key)
baseline = "glgate-baseline" in setups
print("| connections | glgate/nginx req/s | glgate/nginx p99 | glgate/nginx CPU per req | glgate/direct req/s | audit to file / to /dev/null req/s | audit thread share of glgate CPU | scoped/unscoped req/s | scoped/unscoped CPU per req |"
      + (" glgate/baseline req/s | glgate/baseline CPU per req |" if baseline else ""))
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if baseline else ""))
for c in loads:
    line = (f"| {c} | {ratio('glgate','nginx',c,'rps'):.2f} | {ratio('glgate','nginx',c,'p99_us'):.2f} | "
            f"{ratio('glgate','nginx',c,'cpu_s_per_10k'):.2f} | {ratio('glgate','direct',c,'rps'):.2f} | "
            f"{ratio('glgate','glgate-devnull',c,'rps'):.2f} | {100*mean('glgate',c,'audit_cpu_share'):.1f}% | "
            f"{ratio('glgate-scoped','glgate',c,'rps'):.2f} | {ratio('glgate-scoped','glgate',c,'cpu_s_per_10k'):.2f} |")
    if baseline:
        line += (f" {ratio('glgate','glgate-baseline',c,'rps'):.2f} |"
                 f" {ratio('glgate','glgate-baseline',c,'cpu_s_per_10k'):.2f} |")
    print(line)
def idle(text):
    before, peak, held, *rest = text.split()
    return (f"{int(before)/1024:.1f} MiB before, {int(peak)/1024:.1f} MiB peak, "
            f"{int(held)/1024:.1f} MiB while all are held idle ({' '.join(rest)})")
print(f"\n1,000 idle keep-alive connections (one request each, then held 6 s): "
      f"glgate (fresh process) {idle(idle_glgate)}; nginx (master + workers, after the runs) {idle(idle_nginx)}.")
print(f"\nglgate audit lines written in the audit-to-file setup: {audit_lines}.")
PY
