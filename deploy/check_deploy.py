"""Assertions on glgate's deployment files that no schema can make (run by deploy/check.sh).

Schemas say a file is well formed; these checks say the files agree with each other and with
glgate: the paths a config names are the paths its deployment mounts, the ports match, the
hardening asked for is there, the Kubernetes copy of the policy is the shipped one.

    python check_deploy.py dockerfile            properties of deploy/Dockerfile
    python check_deploy.py build-context         paths the build stage copies (one per line)
    python check_deploy.py compose               docker-compose.yml against compose/glgate.yaml
    python check_deploy.py kubernetes            the manifests against each other and the config
    python check_deploy.py systemd               glgate.service against systemd/glgate.yaml
    python check_deploy.py observability         observability/: the dashboard is JSON, the
                                                 PodMonitor selects the Deployment's pods and
                                                 names its admin port
    python check_deploy.py stage TARGET DIR --cert C --key K --proxy-port P --admin-port A
        writes TARGET's config (compose, kubernetes, systemd) under DIR/root with its absolute
        paths moved under DIR/root, the files they name (token, TLS), and DIR/smoke.yaml, the
        same config listening on 127.0.0.1:P and 127.0.0.1:A, its certificate files polled
        every second; prints the two config paths. The kubernetes target's /etc/glgate is laid
        out as the kubelet lays out a projected volume (`..data` symlink).
    python3 check_deploy.py sync-policy
        copies policies/echoes.yaml into kubernetes/configmap.yaml (plain python3 suffices).
    python check_deploy.py rotate DIR CERT KEY
        swaps new tls/tls.crt and tls/tls.key into a kubelet-style DIR, as the kubelet does
        when cert-manager renews the Secret.

Needs PyYAML and dockerfile-parse (deploy/check-requirements.txt). Exit 1 on any problem,
each printed on its own line.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path, PurePosixPath

try:
    import yaml
    from dockerfile_parse import DockerfileParser
except ImportError:  # only `sync-policy` may run without them
    yaml = DockerfileParser = None

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
K8S = DEPLOY / "kubernetes"
OBSERVABILITY = DEPLOY / "observability"

PROXY_PORT = 8443
ADMIN_PORT = 9090
CONFIG_PATH = "/etc/glgate/glgate.yaml"  # where every deployment puts the config

problems: list[str] = []


def need(condition: object, message: str) -> bool:
    if not condition:
        problems.append(message)
    return bool(condition)


def load_yaml(path: Path):
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_all_yaml(path: Path) -> list:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def seconds(text: str | int) -> float:
    """`30s`, `2m`, `500ms`, `45` (Kubernetes/compose/systemd/glgate durations)."""
    if isinstance(text, int):
        return float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*", str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    value, unit = float(match[1]), match[2] or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600}[unit]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def under(path: str, folder: str) -> bool:
    return PurePosixPath(folder) in PurePosixPath(path).parents


# --- glgate configs --------------------------------------------------------------------------


def config_paths(config: dict, folder: str) -> dict[str, str]:
    """The files a glgate config names, by key, as absolute paths in its deployment."""
    paths = {}
    upstream = config.get("upstream") or {}
    for key in ("token_file", "ca_file"):
        if upstream.get(key):
            paths[f"upstream.{key}"] = upstream[key]
    for key, value in (config.get("tls") or {}).items():
        if key.endswith("_file"):
            paths[f"tls.{key}"] = value
    for index, client in enumerate(config.get("clients") or []):
        paths[f"clients[{index}].policy"] = client["policy"]
    output = (config.get("audit") or {}).get("output", "stdout")
    if output not in ("stdout", "stderr"):
        paths["audit.output"] = output
    return {
        key: value if value.startswith("/") else str(PurePosixPath(folder) / value)
        for key, value in paths.items()
    }


def check_config_common(name: str, config: dict) -> None:
    """What every deployment config must do."""
    need(config.get("tls", {}).get("cert_file") and config["tls"].get("key_file"),
         f"{name}: tls.cert_file and tls.key_file must be set (deployments serve TLS)")
    need((config.get("upstream") or {}).get("token_file"),
         f"{name}: upstream.token_file must be set (deployments read the token from a file)")
    need("token_env" not in (config.get("upstream") or {}),
         f"{name}: use upstream.token_file, not token_env")
    need((config.get("audit") or {}).get("output", "stdout") in ("stdout", "stderr"),
         f"{name}: audit.output must be stdout or stderr (read-only file system)")
    need(str(config.get("upstream", {}).get("url", "")).startswith("https://"),
         f"{name}: upstream.url must be https://")
    need(config.get("admin", {}).get("listen"), f"{name}: admin.listen must be set (probes)")
    for client in config.get("clients") or []:
        need(re.fullmatch(r"[0-9a-f]{64}", client.get("token_sha256", "")),
             f"{name}: client {client.get('name')}: token_sha256 must be 64 hex digits")


def shutdown_grace(config: dict) -> float:
    return seconds((config.get("limits") or {}).get("shutdown_grace", "30s"))


# --- Dockerfile --------------------------------------------------------------------------------


def dockerfile_stages() -> list[dict]:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    stages: list[dict] = []
    for instruction in parser.structure:
        kind, value = instruction["instruction"], instruction["value"]
        if kind == "FROM":
            stages.append({"from": value, "lines": []})
        elif stages:
            stages[-1]["lines"].append((kind, value))
        else:
            need(kind in ("ARG", "COMMENT"), f"Dockerfile: {kind} before the first FROM")
    return stages


def copy_sources(value: str) -> tuple[list[str], bool]:
    """COPY's source paths and whether it copies from another stage."""
    words = json.loads(value) if value.lstrip().startswith("[") else value.split()
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1], any(f.startswith("--from") for f in flags)


def exec_form(value: str) -> list[str] | None:
    try:
        words = json.loads(value)
    except ValueError:
        return None
    return words if isinstance(words, list) else None


def check_dockerfile() -> None:
    stages = dockerfile_stages()
    if not need(len(stages) >= 2, "Dockerfile: must be multi-stage (build and runtime)"):
        return
    build, final = stages[0], stages[-1]
    need(build["from"].split()[0].startswith("rust:"), "Dockerfile: the build stage must use a rust: image")
    need(":latest" not in final["from"] and ":" in final["from"].split()[0],
         "Dockerfile: the runtime image must have an explicit tag")
    for stage in stages:
        for kind, value in stage["lines"]:
            need(not (kind == "ADD" and re.search(r"(https?|git)://|git@", value)),
                 f"Dockerfile: ADD from a URL ({value}); download and verify in a RUN instead")
    builds = [v for k, v in build["lines"] if k == "RUN" and "cargo build" in v]
    need(builds, "Dockerfile: the build stage must run cargo build")
    for value in builds:
        for flag in ("--release", "--locked", "--bin glgate"):
            need(flag in value, f"Dockerfile: cargo build must use {flag}")

    # What the build stage copies must exist, and must include every workspace member.
    copied = set()
    for stage in stages:
        for kind, value in stage["lines"]:
            if kind != "COPY":
                continue
            sources, from_stage = copy_sources(value)
            if from_stage:
                continue
            for source in sources:
                need((ROOT / source).exists(), f"Dockerfile: COPY {source}: no such path in the repository")
                copied.add(source.rstrip("/"))
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
    for required in ["Cargo.toml", "Cargo.lock", "src", *workspace.get("workspace", {}).get("members", [])]:
        need(required in copied, f"Dockerfile: the build must COPY {required}")

    final_lines = final["lines"]
    users = [v.strip() for k, v in final_lines if k == "USER"]
    need(users and users[-1].split(":")[0] not in ("root", "0"),
         "Dockerfile: the runtime stage must end with a non-root USER")
    health = [v for k, v in final_lines if k == "HEALTHCHECK"]
    need(health and all(w in health[-1] for w in ("glgate", "probe", f":{ADMIN_PORT}/live")),
         f"Dockerfile: HEALTHCHECK must run `glgate probe http://127.0.0.1:{ADMIN_PORT}/live`")
    exposed = {w.split("/")[0] for k, v in final_lines if k == "EXPOSE" for w in v.split()}
    need({str(PROXY_PORT), str(ADMIN_PORT)} <= exposed, f"Dockerfile: must EXPOSE {PROXY_PORT} {ADMIN_PORT}")
    entry = [exec_form(v) for k, v in final_lines if k == "ENTRYPOINT"]
    need(entry and entry[-1] == ["/usr/local/bin/glgate"],
         'Dockerfile: ENTRYPOINT must be ["/usr/local/bin/glgate"] (exec form: glgate is PID 1 and gets the signals)')
    cmd = [exec_form(v) for k, v in final_lines if k == "CMD"]
    need(cmd and cmd[-1] == ["serve", "--config", CONFIG_PATH],
         f'Dockerfile: CMD must be ["serve", "--config", "{CONFIG_PATH}"]')
    need(not any(k == "VOLUME" for k, _ in final_lines), "Dockerfile: no VOLUME (glgate writes nothing)")


def build_context() -> None:
    """Prints the repository paths the build stage copies."""
    for kind, value in dockerfile_stages()[0]["lines"]:
        if kind == "COPY":
            sources, from_stage = copy_sources(value)
            if not from_stage:
                for source in sources:
                    print(source.rstrip("/"))


# --- Docker Compose ----------------------------------------------------------------------------


def check_compose() -> None:
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    service = (compose.get("services") or {}).get("glgate")
    if not need(service, "docker-compose.yml: no service glgate"):
        return
    name = "docker-compose.yml: services.glgate"
    need(service.get("read_only") is True, f"{name}: read_only must be true")
    need("ALL" in (service.get("cap_drop") or []), f"{name}: cap_drop must hold ALL")
    need("no-new-privileges:true" in (service.get("security_opt") or []),
         f"{name}: security_opt must hold no-new-privileges:true")
    need(service.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name}: needs a restart policy")
    need(str(service.get("user", "65532")).split(":")[0] not in ("root", "0"), f"{name}: must not run as root")
    test = (service.get("healthcheck") or {}).get("test") or []
    need(isinstance(test, list) and test[:3] == ["CMD", "/usr/local/bin/glgate", "probe"]
         and test[-1].endswith(f":{ADMIN_PORT}/live"),
         f"{name}: healthcheck must be [CMD, /usr/local/bin/glgate, probe, http://127.0.0.1:{ADMIN_PORT}/live]")
    build = service.get("build") or {}
    context = DEPLOY / build.get("context", ".")
    need((context / build.get("dockerfile", "Dockerfile")).resolve() == DEPLOY / "Dockerfile",
         f"{name}: build must use deploy/Dockerfile")
    need(context.resolve() == ROOT, f"{name}: the build context must be the repository root")

    command = service.get("command") or ["serve", "--config", CONFIG_PATH]
    config_target = command[command.index("--config") + 1] if "--config" in command else None
    need(config_target == CONFIG_PATH, f"{name}: command must serve --config {CONFIG_PATH}")

    mounts = {}
    for volume in service.get("volumes") or []:
        if not need(isinstance(volume, dict), f"{name}: write volumes in the long form"):
            continue
        need(volume.get("read_only") is True, f"{name}: volume {volume.get('target')} must be read_only")
        mounts[volume["target"]] = DEPLOY / volume["source"]
    for target, source in mounts.items():
        # ./tls holds operator files (gitignored): it need not exist here.
        if not target.startswith("/etc/glgate/tls"):
            need(source.exists(), f"{name}: volume source {source.relative_to(ROOT.parent)} does not exist")
    if not need(CONFIG_PATH in mounts, f"{name}: nothing is mounted at {CONFIG_PATH}"):
        return
    config = load_yaml(mounts[CONFIG_PATH])
    config_name = "compose/glgate.yaml"
    check_config_common(config_name, config)

    secrets = {}
    for secret in service.get("secrets") or []:
        source = secret if isinstance(secret, str) else secret["source"]
        target = source if isinstance(secret, str) else secret.get("target", source)
        secrets[target if target.startswith("/") else f"/run/secrets/{target}"] = source
    top = compose.get("secrets") or {}
    for path, source in secrets.items():
        need(source in top and "file" in top[source], f"docker-compose.yml: secret {source} needs a file")
    need(top.get("gitlab-token", {}).get("file") == "./secrets/gitlab-token",
         "docker-compose.yml: secrets.gitlab-token.file must be ./secrets/gitlab-token")

    for key, path in config_paths(config, str(PurePosixPath(CONFIG_PATH).parent)).items():
        if path in secrets:
            continue
        holder = [t for t in mounts if path == t or under(path, t)]
        if need(holder, f"{config_name}: {key} {path} is not inside any mount of docker-compose.yml"):
            mount = holder[0]
            source = mounts[mount] / PurePosixPath(path).relative_to(mount)
            # ./tls holds operator files (gitignored): it need not exist here.
            if not mount.startswith("/etc/glgate/tls"):
                need(source.exists(), f"{config_name}: {key} {path} -> {source} does not exist")
    need(config["upstream"].get("token_file") in secrets,
         f"{config_name}: upstream.token_file must be the compose secret's path ({', '.join(secrets)})")

    published = {str(p).rsplit(":", 1)[-1] for p in service.get("ports") or []}
    need(str(port_of(config["listen"])) in published, f"{name}: the proxy port {config['listen']} is not published")
    need(port_of(config["listen"]) == PROXY_PORT, f"{config_name}: listen must be on port {PROXY_PORT}")
    need(port_of(config["admin"]["listen"]) == ADMIN_PORT,
         f"{config_name}: admin.listen must be on port {ADMIN_PORT} (the healthcheck probes it)")
    admin_published = [str(p) for p in service.get("ports") or [] if str(p).endswith(f":{ADMIN_PORT}")]
    need(all(p.startswith("127.0.0.1:") for p in admin_published),
         f"{name}: publish the admin port on 127.0.0.1 only")
    need(seconds(service.get("stop_grace_period", "10s")) > shutdown_grace(config),
         f"{name}: stop_grace_period must exceed limits.shutdown_grace")


# --- Kubernetes --------------------------------------------------------------------------------


def kubernetes_objects() -> dict[tuple[str, str], dict]:
    objects = {}
    kustomization = load_yaml(K8S / "kustomization.yaml")
    for resource in kustomization.get("resources") or []:
        for doc in load_all_yaml(K8S / resource):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    for example in sorted(K8S.glob("*.example.yaml")):
        for doc in load_all_yaml(example):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_kubernetes() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    resources = kustomization.get("resources") or []
    for resource in resources:
        need((K8S / resource).is_file(), f"kustomization.yaml: {resource} does not exist")
    for manifest in sorted(K8S.glob("*.yaml")):
        if manifest.name != "kustomization.yaml" and not manifest.name.endswith(".example.yaml"):
            need(manifest.name in resources, f"kustomization.yaml: {manifest.name} is not listed in resources")
    if problems:
        return
    objects = kubernetes_objects()
    namespace = kustomization.get("namespace")
    need(("Namespace", namespace) in objects, f"kustomization.yaml: namespace {namespace} has no Namespace manifest")

    deployment = objects.get(("Deployment", "glgate"))
    if not need(deployment, "kubernetes: no Deployment glgate"):
        return
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    need(selects(spec["selector"]["matchLabels"], labels), "deployment.yaml: the selector does not match the pod labels")
    need(spec.get("replicas") == 2, "deployment.yaml: replicas must be 2")
    need(spec.get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable") == 0,
         "deployment.yaml: rollingUpdate.maxUnavailable must be 0")
    preferred = pod.get("affinity", {}).get("podAntiAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution", [])
    need(any(t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
             and selects(t["podAffinityTerm"]["labelSelector"]["matchLabels"], labels) for t in preferred),
         "deployment.yaml: needs a preferred pod anti-affinity by kubernetes.io/hostname")
    pod_security = pod.get("securityContext", {})
    need(pod_security.get("runAsNonRoot") is True, "deployment.yaml: runAsNonRoot must be true")
    need(pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault",
         "deployment.yaml: seccompProfile must be RuntimeDefault")
    need(pod.get("automountServiceAccountToken") is False, "deployment.yaml: do not mount a service account token")
    need(("ServiceAccount", pod.get("serviceAccountName")) in objects,
         f"deployment.yaml: service account {pod.get('serviceAccountName')} has no manifest")

    container = next((c for c in pod["containers"] if c["name"] == "glgate"), None)
    if not need(container, "deployment.yaml: no container glgate"):
        return
    security = container.get("securityContext", {})
    need(security.get("readOnlyRootFilesystem") is True, "deployment.yaml: readOnlyRootFilesystem must be true")
    need(security.get("allowPrivilegeEscalation") is False, "deployment.yaml: allowPrivilegeEscalation must be false")
    need(security.get("capabilities", {}).get("drop") == ["ALL"], "deployment.yaml: capabilities must drop ALL")
    resources_ = container.get("resources", {})
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            need(resources_.get(kind, {}).get(what), f"deployment.yaml: resources.{kind}.{what} must be set")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    need(ports.get("https") == PROXY_PORT and ports.get("admin") == ADMIN_PORT,
         f"deployment.yaml: container ports must be https={PROXY_PORT}, admin={ADMIN_PORT}")
    for probe, path in (("livenessProbe", "/live"), ("readinessProbe", "/ready")):
        get = container.get(probe, {}).get("httpGet", {})
        need(get.get("path") == path and get.get("port") in ("admin", ADMIN_PORT),
             f"deployment.yaml: {probe} must GET {path} on the admin port")
    args = container.get("args") or []
    need("--config" in args and args[args.index("--config") + 1] == CONFIG_PATH,
         f"deployment.yaml: args must serve --config {CONFIG_PATH}")

    # Where each file lands in the container, from the volumes and their items.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files: dict[str, tuple[str, str, str]] = {}  # container path -> (kind, object name, key)
    for mount in container.get("volumeMounts", []):
        need(mount.get("readOnly") is True, f"deployment.yaml: mount {mount['mountPath']} must be readOnly")
        need("subPath" not in mount, f"deployment.yaml: mount {mount['mountPath']}: subPath files never update")
        volume = volumes.get(mount["name"])
        if not need(volume, f"deployment.yaml: no volume {mount['name']}"):
            continue
        sources = volume["projected"]["sources"] if "projected" in volume else [volume]
        for source in sources:
            for kind in ("configMap", "secret"):
                if kind in source:
                    ref = source[kind]
                    ref_name = ref.get("name") or ref.get("secretName")
                    items = ref.get("items")
                    if not need(items, f"deployment.yaml: volume {mount['name']}: list the {kind} items"):
                        continue
                    for item in items:
                        path = str(PurePosixPath(mount["mountPath"]) / item["path"])
                        files[path] = (kind, ref_name, item["key"])
    for path, (kind, ref_name, key) in files.items():
        obj = objects.get(("ConfigMap" if kind == "configMap" else "Secret", ref_name))
        if need(obj, f"deployment.yaml: {path} comes from {kind} {ref_name}, which has no manifest or example"):
            data = {**(obj.get("data") or {}), **(obj.get("stringData") or {})}
            need(key in data, f"deployment.yaml: {path}: {kind} {ref_name} has no key {key}")

    if not need(files.get(CONFIG_PATH, ("",))[0] == "configMap",
                f"deployment.yaml: {CONFIG_PATH} must come from a ConfigMap"):
        return
    _, configmap_name, config_key = files[CONFIG_PATH]
    configmap = objects[("ConfigMap", configmap_name)]
    config = yaml.safe_load(configmap["data"][config_key])
    config_name = f"configmap.yaml: {config_key}"
    check_config_common(config_name, config)
    for key, path in config_paths(config, str(PurePosixPath(CONFIG_PATH).parent)).items():
        need(path in files, f"{config_name}: {key} {path} is not mounted by deployment.yaml")
    for index, client in enumerate(config.get("clients") or []):
        path = config_paths(config, "/etc/glgate")[f"clients[{index}].policy"]
        if path in files:
            _, _, key = files[path]
            shipped = ROOT / "policies" / PurePosixPath(path).name
            need(shipped.is_file() and configmap["data"][key] == shipped.read_text(encoding="utf-8"),
                 f"configmap.yaml: {key} differs from policies/{shipped.name}: run `python3 deploy/check_deploy.py sync-policy`")
    need(port_of(config["listen"]) == PROXY_PORT, f"{config_name}: listen must be on port {PROXY_PORT}")
    need(port_of(config["admin"]["listen"]) == ADMIN_PORT, f"{config_name}: admin.listen must be on port {ADMIN_PORT}")
    need(not config["admin"]["listen"].startswith("127."),
         f"{config_name}: admin.listen must not be loopback (the kubelet probes the pod IP)")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    need(pod.get("terminationGracePeriodSeconds", 30) > shutdown_grace(config) + pre_stop,
         "deployment.yaml: terminationGracePeriodSeconds must exceed preStop + limits.shutdown_grace")

    service = objects.get(("Service", "glgate"))
    if need(service, "kubernetes: no Service glgate"):
        need(selects(service["spec"]["selector"], labels), "service.yaml: the selector does not match the pods")
        targets = [p.get("targetPort") for p in service["spec"]["ports"]]
        need(targets in (["https"], [PROXY_PORT]), "service.yaml: must expose the proxy port (https) only")
    pdb = objects.get(("PodDisruptionBudget", "glgate"))
    if need(pdb, "kubernetes: no PodDisruptionBudget glgate"):
        need(pdb["spec"].get("minAvailable") == 1, "poddisruptionbudget.yaml: minAvailable must be 1")
        need(selects(pdb["spec"]["selector"]["matchLabels"], labels), "poddisruptionbudget.yaml: selector does not match")
    policy = objects.get(("NetworkPolicy", "glgate"))
    if need(policy, "kubernetes: no NetworkPolicy glgate"):
        need(selects(policy["spec"]["podSelector"]["matchLabels"], labels), "networkpolicy.yaml: podSelector does not match")
        need(sorted(policy["spec"].get("policyTypes", [])) == ["Egress", "Ingress"],
             "networkpolicy.yaml: policyTypes must be Ingress and Egress")
        ingress_ports = {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule.get("ports", [])}
        need(ingress_ports <= {PROXY_PORT, ADMIN_PORT, "https", "admin"} and PROXY_PORT in ingress_ports,
             f"networkpolicy.yaml: ingress must allow {PROXY_PORT} (and at most {ADMIN_PORT})")
        egress_ports = {p["port"] for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}
        need(egress_ports == {443, 53}, "networkpolicy.yaml: egress must allow only 443 (GitLab) and 53 (DNS)")


def configmap_file(key: str) -> str:
    for doc in load_all_yaml(K8S / "configmap.yaml"):
        if doc["kind"] == "ConfigMap":
            return doc["data"][key]
    raise SystemExit("configmap.yaml: no ConfigMap")


# --- systemd -----------------------------------------------------------------------------------


def unit_directives(path: Path) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def check_systemd() -> None:
    unit = unit_directives(DEPLOY / "systemd" / "glgate.service")
    required = {
        "Type": "exec", "Restart": "on-failure", "DynamicUser": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "NoNewPrivileges": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
        "SystemCallArchitectures": "native", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "RestrictNamespaces": "yes", "CapabilityBoundingSet": "",
    }
    for key, value in required.items():
        need(unit.get(key, [None])[-1] == value, f"glgate.service: needs {key}={value}")
    need(set(" ".join(unit.get("RestrictAddressFamilies", [])).split()) == {"AF_INET", "AF_INET6", "AF_UNIX"},
         "glgate.service: RestrictAddressFamilies must be AF_INET AF_INET6 AF_UNIX")
    need("@system-service" in unit.get("SystemCallFilter", []), "glgate.service: needs SystemCallFilter=@system-service")
    need(unit.get("ExecReload") == ["/bin/kill -HUP $MAINPID"], "glgate.service: ExecReload must send SIGHUP")
    exec_start = unit.get("ExecStart", [""])[-1].split()
    need(exec_start[:2] == ["/usr/local/bin/glgate", "serve"] and "--config" in exec_start,
         "glgate.service: ExecStart must be /usr/local/bin/glgate serve --config …")
    config_path = exec_start[exec_start.index("--config") + 1] if "--config" in exec_start else ""
    need(config_path == CONFIG_PATH, f"glgate.service: serve --config {CONFIG_PATH}")

    credentials = {}
    for entry in unit.get("LoadCredential", []):
        name, _, source = entry.partition(":")
        credentials[f"/run/credentials/glgate.service/{name}"] = source
    need("/run/credentials/glgate.service/gitlab-token" in credentials
         and credentials["/run/credentials/glgate.service/gitlab-token"] == "/etc/glgate/gitlab-token",
         "glgate.service: needs LoadCredential=gitlab-token:/etc/glgate/gitlab-token")
    config = load_yaml(DEPLOY / "systemd" / "glgate.yaml")
    name = "systemd/glgate.yaml"
    check_config_common(name, config)
    for key, path in config_paths(config, "/etc/glgate").items():
        if path.startswith("/run/credentials/"):
            need(path in credentials, f"{name}: {key} {path} is not a LoadCredential= of glgate.service")
        elif key.endswith(".policy"):
            need((ROOT / "policies" / PurePosixPath(path).name).is_file(),
                 f"{name}: {key} {path}: no such policy in policies/")
        else:
            need(False, f"{name}: {key} {path}: the service can read only its credentials and /etc/glgate")
    need(seconds(unit.get("TimeoutStopSec", ["90s"])[-1]) > shutdown_grace(config),
         "glgate.service: TimeoutStopSec must exceed limits.shutdown_grace")


# --- staging a config for `glgate check` and the smoke run --------------------------------------

TARGETS = {
    # target: (config text, the folder holding its policies)
    "compose": (lambda: (DEPLOY / "compose" / "glgate.yaml").read_text(encoding="utf-8"), ROOT / "policies"),
    "kubernetes": (lambda: configmap_file("glgate.yaml"), None),
    "systemd": (lambda: (DEPLOY / "systemd" / "glgate.yaml").read_text(encoding="utf-8"), ROOT / "policies"),
}

PLACEHOLDER_DIGEST = "0" * 64
THROWAWAY_DIGEST = hashlib.sha256(b"glg_deploy_check_throwaway_client_token").hexdigest()

ABSOLUTE = re.compile(r"^(?P<lead>\s*(?:-\s+)?(?P<key>[A-Za-z_]+):\s*)(?P<q>[\"']?)(?P<path>/[^\s\"'#]*)(?P=q)(?P<rest>\s*(?:#.*)?)$")


def stage(target: str, out: Path, cert: Path, key: Path, proxy_port: int, admin_port: int) -> None:
    text_of, policies = TARGETS[target]
    text = text_of()
    fake_root = out / "root"
    config_dir = fake_root / PurePosixPath(CONFIG_PATH).parent.relative_to("/")
    config_dir.mkdir(parents=True)
    if policies is not None:
        shutil.copytree(policies, config_dir / "policies")
    else:
        (config_dir / "policies").mkdir()
        (config_dir / "policies" / "echoes.yaml").write_text(configmap_file("echoes.yaml"), encoding="utf-8")

    lines = []
    for line in text.splitlines():
        # The shipped placeholder digest matches no token and `glgate check` refuses it, as it
        # should: stage the digest of a throwaway token instead, as an operator would.
        line = line.replace(PLACEHOLDER_DIGEST, THROWAWAY_DIGEST)
        match = ABSOLUTE.match(line)
        if match:
            name, path = match["key"], match["path"]
            moved = fake_root / path.lstrip("/")
            moved.parent.mkdir(parents=True, exist_ok=True)
            if name == "token_file":
                moved.write_text("glpat-deploy-check-not-a-real-token\n", encoding="utf-8")
                moved.chmod(0o600)  # as an operator installs a secret; check warns otherwise
            elif name.endswith(("cert_file", "ca_file")):
                shutil.copyfile(cert, moved)
            elif name.endswith("key_file"):
                shutil.copyfile(key, moved)
            elif name == "output":
                pass  # an audit file: its folder exists now
            else:
                raise SystemExit(f"{target}: don't know what file {name}: {path} should hold")
            line = f"{match['lead']}{match['q']}{moved}{match['q']}{match['rest']}"
        lines.append(line)
    config = config_dir / "glgate.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # The smoke run's copy: loopback ports, and certificate files polled every second.
    smoke, listens = [], 0
    for line in lines:
        match = re.match(r"^(\s*)listen:\s*\S+(.*)$", line)
        if match:
            port = proxy_port if not match[1] else admin_port
            line = f"{match[1]}listen: 127.0.0.1:{port}{match[2]}"
            listens += 1
        smoke.append(line)
        match = re.match(r"^(\s+)key_file:", line)
        if match and "reload_interval:" not in text:
            smoke.append(f"{match[1]}reload_interval: 1s")
    if listens != 2:
        raise SystemExit(f"{target}: expected listen and admin.listen, found {listens} listen lines")
    smoke_config = config_dir / "smoke.yaml"
    smoke_config.write_text("\n".join(smoke) + "\n", encoding="utf-8")
    if target == "kubernetes":
        kubelet_layout(config_dir, keep={"smoke.yaml"})
    print(config)
    print(smoke_config)


def kubelet_layout(folder: Path, keep: set[str]) -> None:
    """Lays FOLDER out as the kubelet does a ConfigMap/Secret volume: the files in a
    timestamped folder, `..data` a symlink to it, each top-level entry a symlink through
    `..data`. An update writes a new folder and swaps `..data` atomically (see `rotate`)."""
    version = folder / "..v1"
    version.mkdir()
    for entry in list(folder.iterdir()):
        if entry.name.startswith("..") or entry.name in keep:
            continue
        entry.rename(version / entry.name)
        entry.symlink_to(Path("..data") / entry.name)
    (folder / "..data").symlink_to(version.name)


def rotate(folder: Path, files: dict[str, Path]) -> None:
    """What the kubelet does when a mounted Secret changes: copy the current version into a
    new folder, put the new files there, then rename a new `..data` symlink over the old."""
    current = folder / (folder / "..data").readlink()
    version = folder / f"..v{len(list(folder.glob('..v*'))) + 1}"
    shutil.copytree(current, version)
    for relative, source in files.items():
        shutil.copyfile(source, version / relative)
    link = folder / "..data_tmp"
    link.symlink_to(version.name)
    link.replace(folder / "..data")


def sync_policy() -> None:
    """Copies policies/echoes.yaml into configmap.yaml's echoes.yaml block (the last key of
    the ConfigMap's data), indented by four spaces."""
    path = K8S / "configmap.yaml"
    text = path.read_text(encoding="utf-8")
    marker = "\n  echoes.yaml: |\n"
    if marker not in text:
        raise SystemExit("configmap.yaml: no `  echoes.yaml: |` block")
    policy = (ROOT / "policies" / "echoes.yaml").read_text(encoding="utf-8")
    block = "".join(f"    {line}" if line.strip() else "\n" for line in policy.splitlines(keepends=True))
    path.write_text(text[: text.index(marker) + len(marker)] + block, encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: echoes.yaml copied from policies/echoes.yaml")


def check_observability() -> None:
    """The pack in observability/ against the Kubernetes manifests. tests/e2e/observability.rs
    checks that the metrics it names exist; promtool checks and tests the rules."""
    try:
        dashboard = json.loads((OBSERVABILITY / "glgate-dashboard.json").read_text(encoding="utf-8"))
        need(dashboard.get("uid") == "glgate", "glgate-dashboard.json: uid is not glgate")
    except json.JSONDecodeError as error:
        need(False, f"glgate-dashboard.json: not JSON: {error}")
    rules = load_yaml(OBSERVABILITY / "glgate-rules.yaml")
    need(rules.get("groups"), "glgate-rules.yaml: no rule groups")
    objects = kubernetes_objects()
    deployment = objects.get(("Deployment", "glgate"))
    if not need(deployment, "kubernetes: no Deployment glgate"):
        return
    pod = deployment["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    monitor = load_yaml(OBSERVABILITY / "podmonitor.yaml")
    need(monitor.get("kind") == "PodMonitor", "podmonitor.yaml: not a PodMonitor")
    namespace = load_yaml(K8S / "kustomization.yaml").get("namespace")
    need(monitor["metadata"].get("namespace") == namespace,
         f"podmonitor.yaml: namespace is not {namespace}, the kustomization's")
    need(selects(monitor["spec"]["selector"].get("matchLabels"), pod["metadata"]["labels"]),
         "podmonitor.yaml: its selector does not select the Deployment's pods")
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        need(ports.get(endpoint.get("port")) == ADMIN_PORT,
             f"podmonitor.yaml: port {endpoint.get('port')!r} is not the admin port ({ADMIN_PORT})")
        need(endpoint.get("path") == "/metrics", "podmonitor.yaml: path is not /metrics")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "sync-policy":
        sync_policy()
        return 0
    if yaml is None:
        print("needs PyYAML and dockerfile-parse: run it as deploy/check.sh does", file=sys.stderr)
        return 2
    if command == "stage":
        target, out = argv[1], Path(argv[2])
        options = dict(zip(argv[3::2], argv[4::2]))
        stage(target, out, Path(options["--cert"]), Path(options["--key"]),
              int(options["--proxy-port"]), int(options["--admin-port"]))
        return 0
    if command == "rotate":
        folder = Path(argv[1])
        rotate(folder, {"tls/tls.crt": Path(argv[2]), "tls/tls.key": Path(argv[3])})
        return 0
    if command == "build-context":
        build_context()
        return 0
    checks = {"dockerfile": check_dockerfile, "compose": check_compose,
              "kubernetes": check_kubernetes, "systemd": check_systemd,
              "observability": check_observability}
    if command not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    checks[command]()
    for problem in problems:
        print(f"  problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
