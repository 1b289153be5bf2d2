#!/usr/bin/env python3
"""Interop test: the real python-gitlab client against glgate.

Starts the demo example in `--serve` mode (glgate with the shipped Echoes
policy in front of an in-process fake GitLab), once with GitLab at its root
and once under the `/gitlab` relative-URL prefix, drives it with
python-gitlab, and checks what the Echoes policy allows and refuses, then the
audit log.

    python tests/interop/python_gitlab.py [path/to/target/release/examples/demo]

Prints `ok   <check>` per passing check and `N passed, 0 failed` at the end;
stops at the first failure with `FAIL <check>: <detail>` and exit status 1.
Needs only the standard library and python-gitlab (with its `requests`).
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import time
import warnings

import gitlab
import requests

GITLAB_TOKEN = "glpat-fake-upstream-token-0123456789"
ECHOES_HOOK_URL = "https://api.echoeshq.com/hooks/gitlab/acme"
ECHOES_MR_LABEL = "echoes/intent: feature"
ECHOES_MR_EFFORT_LABEL = "echoes/effort: M"
ECHOES_GROUP_LABEL = "echoes/effort: S"
STARTUP_TIMEOUT_S = 60
SHUTDOWN_TIMEOUT_S = 10
PREFIXES = ["", "/gitlab"]


class CheckFailed(Exception):
    pass


def expect(condition, detail):
    if not condition:
        raise CheckFailed(detail)


def client(url, token):
    # No proxies, .netrc or CA bundles from the environment: talk to 127.0.0.1 directly.
    session = requests.Session()
    session.trust_env = False
    return gitlab.Gitlab(url, private_token=token, session=session, timeout=30)


def expect_refused(call, status=403):
    """Runs `call`, which must fail with a GitlabError carrying `status`."""
    try:
        result = call()
    except gitlab.exceptions.GitlabError as e:
        expect(
            e.response_code == status,
            f"expected {status}, got {type(e).__name__} {e.response_code}: {e.error_message}",
        )
        if status == 403:
            # glgate's refusals say why, in GitLab's `message` field.
            expect("glgate: " in str(e.error_message), f"no reason in {e.error_message!r}")
        return f"{type(e).__name__} {e.response_code}"
    raise CheckFailed(f"expected {status}, but the call succeeded: {result!r}")


def start_demo(binary, stderr_file, prefix):
    proc = subprocess.Popen(
        [binary, "--serve", *(["--prefix", prefix] if prefix else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        text=True,
    )
    ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT_S)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        proc.wait()
        raise CheckFailed(
            f"no JSON line on stdout within {STARTUP_TIMEOUT_S} s (exit status {proc.returncode})"
        )
    return proc, json.loads(line)


def demo_command(proc, line):
    """Sends one control line to the demo (see examples/demo.rs) and returns its JSON answer."""
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT_S)
    answer = json.loads(proc.stdout.readline() if ready else "null") or {}
    expect(answer.get("ok"), f"demo command {line}: {answer}")
    return answer


def stop_demo(proc):
    """Closes the demo's stdin and waits; returns (exit status, had to kill)."""
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        return proc.wait(timeout=SHUTDOWN_TIMEOUT_S), False
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(), True


def read_audit(path, wait_for_deny=True):
    """The audit log's text, waiting briefly for the writer to catch up."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if not wait_for_deny or '"deny"' in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def checks(info, command):
    """The checks in order: (name, function) pairs sharing `state`.
    `command` sends a control line to the demo."""
    url = info["glgate_url"]
    gl = client(url, info["client_token"])
    state = {}

    def auth_warns_about_web_url():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gl.auth()
        messages = [str(w.message) for w in caught]
        expect(len(messages) == 1, f"expected exactly one warning, got {messages}")
        msg = messages[0]
        expect(
            "base URL in the server response differs" in msg and info["gitlab_url"] in msg,
            f"unexpected warning: {msg}",
        )
        return f"web_url stays {info['gitlab_url']}/glgate-bot"

    def auth_user():
        expect(gl.user.username == "glgate-bot", f"username {gl.user.username!r}")
        expect(gl.user.id == 1, f"id {gl.user.id!r}")

    def top_level_groups():
        groups = gl.groups.list(top_level_only=True, min_access_level=40, get_all=True)
        ids = sorted(g.id for g in groups)
        expect(ids == [10, 20, 30, 40], f"group ids {ids}")

    def link_headers_rewritten():
        resp = gl.http_request("get", "/groups/10/projects", query_data={"per_page": 20})
        link = resp.headers.get("Link", "")
        expect(link, f"no Link header; headers {dict(resp.headers)}")
        targets = [part.split(">")[0].lstrip(" <") for part in link.split(",")]
        bad = [t for t in targets if not t.startswith(url + "/api/v4/")]
        expect(not bad, f"Link targets not on {url}: {link}")
        expect(info["gitlab_url"] not in link, f"Link leaks the GitLab URL: {link}")
        expect(resp.headers.get("X-Total-Pages") == "3", f"X-Total-Pages {resp.headers.get('X-Total-Pages')}")

    def group_projects_paginated():
        group = gl.groups.get(10)
        expect(group.full_path == "acme", f"group 10 is {group.full_path!r}")
        state["group"] = group
        projects = group.projects.list(get_all=True, per_page=20)
        ids = [p.id for p in projects]
        expect(len(ids) == 47, f"{len(ids)} projects: {sorted(ids)}")
        expect(len(set(ids)) == 47, f"duplicates in {sorted(ids)}")
        want = {101, 102, *range(1001, 1046)}
        expect(set(ids) == want, f"missing {sorted(want - set(ids))}, extra {sorted(set(ids) - want)}")
        return "47 projects over 3 pages"

    def project_by_path():
        project = gl.projects.get("acme/backend")
        expect(project.id == 101, f"id {project.id}")
        expect(project.path_with_namespace == "acme/backend", project.path_with_namespace)
        state["project"] = project

    def project_by_dotted_path():
        command("rename-project 103 api.v2")
        project = gl.projects.get("acme/platform/api.v2")
        expect(project.id == 103, f"id {project.id}")
        expect(project.path_with_namespace == "acme/platform/api.v2", project.path_with_namespace)

    def open_merge_requests():
        mrs = state["project"].mergerequests.list(state="opened", get_all=True)
        iids = sorted(mr.iid for mr in mrs)
        expect(iids == [1, 2], f"open iids {iids}")
        every = state["project"].mergerequests.list(get_all=True)
        expect(3 in {mr.iid for mr in every}, f"all iids {sorted(mr.iid for mr in every)}")

    def get_merge_request():
        mr = state["project"].mergerequests.get(1)
        expect(mr.iid == 1 and mr.project_id == 101, f"iid {mr.iid} project {mr.project_id}")
        expect(ECHOES_MR_LABEL not in mr.labels, f"labels already {mr.labels}")

    def add_echoes_mr_label():
        project = state["project"]
        project.mergerequests.update(1, {"add_labels": ECHOES_MR_LABEL})
        labels = project.mergerequests.get(1).labels
        expect(ECHOES_MR_LABEL in labels, f"labels after update {labels}")

    def save_echoes_mr_label():
        # python-gitlab's idiomatic labelling: the whole new set, as `labels`.
        mr = state["project"].mergerequests.get(1)
        mr.labels = mr.labels + [ECHOES_MR_EFFORT_LABEL]
        mr.save()
        labels = state["project"].mergerequests.get(1).labels
        expect(ECHOES_MR_EFFORT_LABEL in labels and "bug" in labels, f"labels after save {labels}")

    def refuse_saving_without_team_label():
        mr = state["project"].mergerequests.get(1)
        mr.labels = [label for label in mr.labels if label.startswith("echoes/")]
        return expect_refused(lambda: mr.save())

    def create_echoes_group_label():
        group = state["group"]
        group.labels.create({"name": ECHOES_GROUP_LABEL, "color": "#428BCA"})
        names = [label.name for label in group.labels.list(get_all=True)]
        expect(ECHOES_GROUP_LABEL in names, f"group labels {names}")
        expect("bug" in names, f"group labels {names}")

    def register_echoes_hook():
        project = state["project"]
        hook = project.hooks.create(
            {"url": ECHOES_HOOK_URL, "merge_requests_events": True, "push_events": False}
        )
        hooks = project.hooks.list(get_all=True)
        listed = [h for h in hooks if h.id == hook.id]
        expect(listed and listed[0].url == ECHOES_HOOK_URL, f"hooks {[h.attributes for h in hooks]}")
        expect(listed[0].merge_requests_events is True, f"hook {listed[0].attributes}")
        expect(listed[0].push_events is False, f"hook {listed[0].attributes}")
        # The webhook relay: GitLab stores glgate's relay URL and secret; the
        # client never sees them (README, "Webhooks").
        stored = [h for h in command("hooks")["hooks"] if h["id"] == hook.id]
        expect(
            stored and stored[0]["url"].startswith(url + "/-/webhooks/v1/") and stored[0]["has_token"],
            f"GitLab stores {stored}",
        )
        # An update through python-gitlab's save() reads back as written.
        hook.url = ECHOES_HOOK_URL + "/v2"
        hook.save()
        expect(project.hooks.get(hook.id).url == ECHOES_HOOK_URL + "/v2", "updated url")
        hook.url = ECHOES_HOOK_URL
        hook.save()
        expect(project.hooks.get(hook.id).url == ECHOES_HOOK_URL, "url restored")
        return "GitLab holds the relay URL; the client sees its own"

    def refuse_project_delete():
        return expect_refused(lambda: state["project"].delete())

    def refuse_repository_file():
        return expect_refused(lambda: state["project"].files.get(file_path="README.md", ref="main"))

    def refuse_foreign_hook():
        return expect_refused(
            lambda: state["project"].hooks.create({"url": "https://attacker.example/x"})
        )

    def refuse_mr_title():
        return expect_refused(lambda: state["project"].mergerequests.update(1, {"title": "pwned"}))

    def refuse_non_echoes_label():
        return expect_refused(
            lambda: state["project"].mergerequests.update(1, {"add_labels": "security-approved"})
        )

    def refused_calls_changed_nothing():
        project = gl.projects.get(101)
        mr = project.mergerequests.get(1)
        expect(mr.title != "pwned", f"title {mr.title!r}")
        expect("security-approved" not in mr.labels, f"labels {mr.labels}")
        expect("bug" in mr.labels, f"the team's label survived: {mr.labels}")
        urls = [h.url for h in project.hooks.list(get_all=True)]
        expect(urls == [ECHOES_HOOK_URL], f"hooks {urls}")

    def delete_echoes_hook():
        project = state["project"]
        hooks = project.hooks.list(get_all=True)
        expect(len(hooks) == 1, f"hooks {[h.attributes for h in hooks]}")
        project.hooks.delete(hooks[0].id)
        left = project.hooks.list(get_all=True)
        expect(not left, f"hooks after delete {[h.attributes for h in left]}")

    def gitlab_429_retried():
        command("clear")
        command("fail 429 /api/v4/projects/102")
        project = gl.projects.get(102)
        expect(project.id == 102, f"id {project.id}")
        requests_seen = command("requests")["requests"]
        gets = [r for r in requests_seen if r["method"] == "GET" and r["target"] == "/api/v4/projects/102"]
        expect(len(gets) == 2, f"GitLab saw {len(gets)} GET /api/v4/projects/102")
        return "one 429, then 200"

    def what_gitlab_received():
        command("clear")
        state["project"].mergerequests.update(2, {"add_labels": ECHOES_MR_LABEL})
        expect_refused(lambda: state["project"].delete())
        requests_seen = command("requests")["requests"]
        expect(len(requests_seen) == 1, f"GitLab saw {requests_seen}")
        put = requests_seen[0]
        expect(
            (put["method"], put["target"]) == ("PUT", "/api/v4/projects/101/merge_requests/2"),
            f"{put['method']} {put['target']}",
        )
        expect(ECHOES_MR_LABEL in put["body"], f"body {put['body']}")
        expect(put["credential"] == "glgate" and not put["client_token_seen"], f"request {put}")
        expect(put["under_prefix"] == bool(info["gitlab_prefix"]), f"under prefix: {put['under_prefix']}")
        return f"PUT {info['gitlab_prefix']}{put['target']}, glgate's token only"

    scoped = client(url, info["scoped_client_token"])

    def scoped_groups():
        groups = scoped.groups.list(get_all=True, per_page=2)
        paths = sorted(g.full_path for g in groups)
        want = ["acme", "acme/platform", "partners/team"]
        expect(paths == want, f"groups {paths}, want {want}")
        top = sorted(g.full_path for g in scoped.groups.list(top_level_only=True, get_all=True))
        expect(top == ["acme"], f"top-level groups {top}")
        return f"{len(paths)} groups over pages of 2"

    def scoped_projects():
        seen = {}
        for path in ["acme", "partners/team"]:
            group = scoped.groups.get(path)
            for p in group.projects.list(include_subgroups=True, get_all=True, per_page=20):
                seen[p.id] = p.path_with_namespace
        seen[scoped.projects.get("tools/ci-templates").id] = "tools/ci-templates"
        want = {101, 102, 103, 202, 401, *range(1001, 1046)}
        expect(set(seen) == want, f"missing {sorted(want - set(seen))}, extra {sorted(set(seen) - want)}")
        return f"{len(seen)} projects, acme/secret-stuff/keys hidden"

    def scoped_out_of_reach():
        for path in ["secret/vault", "acme/secret-stuff/keys", "tools/scripts"]:
            expect_refused(lambda: scoped.projects.get(path), status=404)
        expect_refused(lambda: scoped.groups.get("partners"), status=404)
        expect_refused(lambda: scoped.groups.get(30), status=404)
        return "404 Not Found, as GitLab answers"

    def wrong_token():
        bad = client(url, "glg_" + "0" * 64)
        try:
            bad.auth()
        except gitlab.exceptions.GitlabAuthenticationError as e:
            expect(e.response_code == 401, f"status {e.response_code}")
            return f"{type(e).__name__} 401"
        raise CheckFailed("auth() with a wrong token succeeded")

    def audit_has_deny():
        text = read_audit(info["audit_log"])
        events = [json.loads(line) for line in text.splitlines() if line.strip()]
        denies = [e for e in events if e.get("decision") == "deny"]
        expect(denies, f"{len(events)} events, none with decision deny")
        state["audit"] = text
        return f"{len(events)} events, {len(denies)} denied"

    def audit_has_no_tokens():
        text = state["audit"]
        expect(GITLAB_TOKEN not in text, "the GitLab token is in the audit log")
        expect(info["client_token"] not in text, "the client token is in the audit log")

    def strict(check):
        """Runs `check` with every warning raised as an error."""

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                return check()

        return run

    return [
        ("auth: exactly one warning, about /user web_url", auth_warns_about_web_url),
        ("auth: current user is glgate-bot", strict(auth_user)),
        ("top-level groups are 10, 20, 30, 40", strict(top_level_groups)),
        ("Link headers point at glgate", strict(link_headers_rewritten)),
        ("group acme projects, all pages", strict(group_projects_paginated)),
        ("project by path acme/backend", strict(project_by_path)),
        ("project by a path with a dot (acme/platform/api.v2)", strict(project_by_dotted_path)),
        ("open merge requests of 101", strict(open_merge_requests)),
        ("get merge request 1", strict(get_merge_request)),
        ("add an echoes/ label to MR 1", strict(add_echoes_mr_label)),
        ("mr.labels += [echoes/…]; mr.save()", strict(save_echoes_mr_label)),
        ("refused: mr.save() dropping the team's label", strict(refuse_saving_without_team_label)),
        ("create an echoes/ group label", strict(create_echoes_group_label)),
        ("register the Echoes webhook", strict(register_echoes_hook)),
        ("refused: delete project", strict(refuse_project_delete)),
        ("refused: read repository file", strict(refuse_repository_file)),
        ("refused: webhook to another host", strict(refuse_foreign_hook)),
        ("refused: edit MR title", strict(refuse_mr_title)),
        ("refused: non-echoes MR label", strict(refuse_non_echoes_label)),
        ("refused calls changed nothing", strict(refused_calls_changed_nothing)),
        ("delete the Echoes webhook", strict(delete_echoes_hook)),
        ("GitLab 429 retried by the client", strict(gitlab_429_retried)),
        ("what GitLab received", strict(what_gitlab_received)),
        ("scoped client: groups are exactly the scope", strict(scoped_groups)),
        ("scoped client: projects are exactly the scope", strict(scoped_projects)),
        ("scoped client: the rest is 404", strict(scoped_out_of_reach)),
        ("wrong client token: 401", strict(wrong_token)),
        ("audit log has deny decisions", audit_has_deny),
        ("audit log holds no tokens", audit_has_no_tokens),
    ]


def run_at(binary, prefix):
    """Runs every check against a fresh demo with GitLab under `prefix`;
    returns (passed, the failed check's name and detail or None)."""
    label = prefix or "/"
    passed = 0
    failed = None
    with tempfile.TemporaryFile(mode="w+") as stderr_file:
        proc = None
        try:
            proc, info = start_demo(binary, stderr_file, prefix)
            print(f"-- GitLab at {label}: glgate {info['glgate_url']} -> fake GitLab {info['gitlab_url']}")
            for name, check in checks(info, lambda line: demo_command(proc, line)):
                try:
                    note = check()
                except Exception as e:  # any exception is this check's failure
                    detail = str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
                    failed = (f"{label} {name}", detail)
                    break
                passed += 1
                print(f"ok   {label} {name}" + (f" ({note})" if note else ""))
        except (CheckFailed, OSError, ValueError, KeyError) as e:
            failed = (f"{label} start the demo", f"{type(e).__name__}: {e}")
        finally:
            if proc is not None:
                status, killed = stop_demo(proc)
                if failed is None:
                    name = f"{label} demo exits when stdin closes"
                    if killed or status != 0:
                        how = "killed" if killed else "exited"
                        failed = (name, f"{how} after {SHUTDOWN_TIMEOUT_S} s, status {status}")
                    else:
                        passed += 1
                        print(f"ok   {name}")
        if failed is not None:
            stderr_file.seek(0)
            tail = stderr_file.read()[-4000:]
            if tail.strip():
                print("--- demo stderr (tail) ---", file=sys.stderr)
                print(tail, file=sys.stderr)
    return passed, failed


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/examples/demo"
    print(f"python-gitlab {gitlab.__version__}, demo {binary}")
    total = 0
    for prefix in PREFIXES:
        passed, failed = run_at(binary, prefix)
        total += passed
        if failed is not None:
            print(f"FAIL {failed[0]}: {failed[1]}")
            print(f"{total} passed, 1 failed")
            return 1
    print(f"{total} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
