"""`autorollback status`'s pure core and rendering: golden output from realistic objects, a fixed clock."""

import datetime as dt
import json
import subprocess
import sys

import yaml

from autorollback import history, ledger
from autorollback.status import core, render, shell
from autorollback.workloads import KINDS

import factories as f

NOW = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)
DEPLOYMENT = KINDS["Deployment"]
V1, V2 = "registry.example/shop:1.4.0", "registry.example/shop:1.5.0"
PR = "https://github.com/acme/shop/pull/42"


def named(d: dict, name: str, namespace: str = "shop") -> dict:
    d["metadata"].update(name=name, namespace=namespace)
    return d


def healthy() -> tuple[dict, list[dict]]:
    d = named(f.deployment(V1, 1, complete=True), "web")
    rs = f.replicaset(1, V1, marks={history.HEALTHY_AT: "revision 1 generation 1"}, available=3)
    return d, [rs]


def rolled_back() -> tuple[dict, list[dict]]:
    bad, good = f.rs_name(V2), f.rs_name(V1)
    entry = ledger.Entry(bad, good, "2026-11-26T11:40:00Z", "2026-11-26T11:41:30Z", "ProgressDeadlineExceeded", 2, 3)
    d = named(
        f.deployment(
            V1,
            3,
            complete=True,
            annotations={ledger.KEY: ledger.dump((entry,)), "autorollback.io/fail-on": "CrashLoopBackOff,OOMKilled"},
        ),
        "api",
    )
    return d, [
        f.replicaset(
            3, V1, marks={history.HEALTHY_AT: "revision 3 generation 4"}, available=3, created="2026-11-20T09:00:00Z"
        ),
        f.replicaset(
            2,
            V2,
            marks={
                history.FAILED_AT: "2026-11-26T11:40:00Z revision 2",
                history.FAILED_REASON: "ProgressDeadlineExceeded: timed out",
                history.OUTCOME: "success (ProgressDeadlineExceeded) at 2026-11-26T11:41:30.033271Z",
                core.PR_MARK: PR,
            },
            created="2026-11-26T11:30:00Z",
        ),
    ]


def dry_run_failed() -> tuple[dict, list[dict]]:
    d = named(
        f.deployment(
            V2, 2, failed=True, annotations={"autorollback.io/mode": "dry-run"}, updated="2026-11-26T11:55:00Z"
        ),
        "worker",
        "jobs",
    )
    return d, [
        f.replicaset(
            2, V2, marks={history.FAILED_AT: "2026-11-26T11:55:00Z revision 2"}, created="2026-11-26T11:50:00Z"
        ),
        f.replicaset(1, V1, marks={history.HEALTHY_AT: "revision 1"}, available=3, created="2026-11-01T00:00:00Z"),
    ]


def baking() -> tuple[dict, list[dict]]:
    d = named(
        f.deployment(
            V2,
            5,
            complete=True,
            annotations={"autorollback.io/checks": "error-rate,latency-p99", "autorollback.io/alerts": "HighErrorRate"},
        ),
        "cart",
    )
    return d, [
        f.replicaset(5, V2, marks={history.BAKE: "v1 120 error-rate=0p,latency-p99=0p sig"}, available=3),
        f.replicaset(4, V1, marks={history.HEALTHY_AT: "2026-11-20T10:00:00Z"}),  # written by an earlier version
    ]


def rolling_out() -> tuple[dict, list[dict]]:
    d = named(f.deployment(V2, 2), "search")
    return d, [
        f.replicaset(2, V2, available=1),
        f.replicaset(1, V1, marks={history.HEALTHY_AT: "revision 1 generation 1"}, available=2),
    ]


CASES = (healthy, rolled_back, dry_run_failed, baking, rolling_out)

TABLE = """\
NAMESPACE  KIND/NAME          MODE      WATCHING                                                            REVISION  STATE        LAST HEALTHY  LAST ROLLBACK                            REVERT PR
jobs       deployment/worker  dry-run   deadline 600s                                                       2         failed       1             -                                        -
shop       deployment/api     rollback  deadline 600s; fast CrashLoopBackOff,OOMKilled                      3         rolled back  3             18m ago 2 -> 3 ProgressDeadlineExceeded  https://github.com/acme/shop/pull/42
shop       deployment/cart    rollback  deadline 600s; checks error-rate,latency-p99; alerts HighErrorRate  5         baking       4             -                                        -
shop       deployment/search  rollback  deadline 600s                                                       2         rolling out  1             -                                        -
shop       deployment/web     rollback  deadline 600s                                                       1         healthy      1             -                                        -
"""


def rows() -> list[core.Row]:
    return [core.row(DEPLOYMENT, *case()) for case in CASES]


def test_table_golden() -> None:
    assert render.table(rows(), NOW) == TABLE


def test_table_is_the_same_in_any_order_and_widths_follow_content() -> None:
    assert render.table(list(reversed(rows())), NOW) == TABLE
    (one,) = [r for r in rows() if r.name == "web"]
    assert render.table([one], NOW).splitlines()[0] == (
        "NAMESPACE  KIND/NAME       MODE      WATCHING       REVISION  STATE    LAST HEALTHY  LAST ROLLBACK  REVERT PR"
    )


def test_colours_only_when_asked() -> None:
    painted = render.table(rows(), NOW, colour=True)
    assert "\x1b[35mrolled back\x1b[0m" in painted and "\x1b[31mfailed\x1b[0m" in painted
    assert (
        painted.replace("\x1b[35m", "")
        .replace("\x1b[31m", "")
        .replace("\x1b[36m", "")
        .replace("\x1b[33m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[0m", "")
        == TABLE
    )


def test_colour_follows_the_terminal_and_no_color(monkeypatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert shell.colour(Tty()) and not shell.colour(object())
    monkeypatch.setenv("NO_COLOR", "")
    assert not shell.colour(Tty())


DETAIL = """\
Name:          api
Namespace:     shop
Kind:          Deployment
Mode:          rollback
Watching:      deadline 600s; fast CrashLoopBackOff,OOMKilled
Revision:      3
State:         rolled back
Last healthy:  revision 3
Last rollback: 18m ago 2 -> 3 ProgressDeadlineExceeded
Revert PR:     https://github.com/acme/shop/pull/42

Revisions:
  REVISION  NAME          STATE                  AVAILABLE  AGE  IMAGES                       MARKS
  3 *       web-dab21bdc  healthy                3          6d   registry.example/shop:1.4.0  healthy-at=revision 3 generation 4
  2         web-db7071eb  rolled back away from  0          30m  registry.example/shop:1.5.0  failed-at=2026-11-26T11:40:00Z revision 2; failed-reason=ProgressDeadlineExceeded: timed out; outcome=success (ProgressDeadlineExceeded) at 2026-11-26T11:41:30.033271Z; revert-pr=https://github.com/acme/shop/pull/42
Ledger (newest first):
  AGE  REVISION  FAILED        RESTORED      REASON                    GENERATION
  18m  2         web-db7071eb  web-dab21bdc  ProgressDeadlineExceeded  3
Events (autorollback's, newest first):
  AGE  TYPE     REASON         COUNT  MESSAGE
  18m  Normal   RolledBack     1      rolled back from revision 2 (registry.example/shop:1.5.0) to revision 1 (registry.example/shop:1.4.0): ProgressDeadlineExceeded
  18m  Warning  RolloutFailed  1      revision 2 (registry.example/shop:1.5.0) failed: ReplicaSet timed out progressing
"""


def event(
    reason: str, type_: str, message: str, at: str, component: str = "autorollback", name: str = "api", rv: str = "1"
) -> dict:
    return {
        "metadata": {
            "name": f"{name}.{reason.lower()}",
            "namespace": "shop",
            "creationTimestamp": at,
            "resourceVersion": rv,
        },
        "involvedObject": {"kind": "Deployment", "name": name, "namespace": "shop"},
        "reason": reason,
        "type": type_,
        "message": message,
        "lastTimestamp": at,
        "count": 1,
        "source": {"component": component},
    }


EVENTS = [
    event(
        "RolloutFailed",
        "Warning",
        f"revision 2 ({V2}) failed: ReplicaSet timed out progressing",
        "2026-11-26T11:41:31Z",  # the same second as the rollback: written first (resourceVersion)
        rv="9",
    ),
    event(
        "RolledBack",
        "Normal",
        f"rolled back from revision 2 ({V2}) to revision 1 ({V1}): ProgressDeadlineExceeded",
        "2026-11-26T11:41:31Z",
        rv="100",
    ),
    event("ScalingReplicaSet", "Normal", "Scaled up", "2026-11-26T11:41:32Z", component="deployment-controller"),
    event("RolledBack", "Normal", "another workload's", "2026-11-26T11:41:33Z", name="other"),
]


def test_detail_golden() -> None:
    d, objects = rolled_back()
    assert render.detail(core.detail(DEPLOYMENT, d, objects, EVENTS), NOW) == DETAIL


def test_detail_says_what_it_cannot_read() -> None:
    d, objects = healthy()
    d["metadata"]["annotations"][ledger.KEY] = "not a ledger"
    objects[0]["metadata"]["annotations"][history.HEALTHY_AT] = history.bind(
        objects[0]["metadata"]["name"], "a future form"
    )
    out = render.detail(core.detail(DEPLOYMENT, d, objects, None), NOW)
    assert "Note: the ledger (autorollback.io/rollbacks) is there but unreadable" in out
    assert "Note: revision 1: healthy-at 'a future form' is in a form this CLI cannot read" in out
    assert "Note: autorollback's Events could not be read" in out


def test_copied_marks_are_shown_as_copies() -> None:
    d, objects = healthy()
    objects[0]["metadata"]["annotations"][history.FAILED_AT] = "web-other 2026-11-26T11:00:00Z revision 1"
    (view,) = core.detail(DEPLOYMENT, d, objects, []).revisions
    assert view.marks["failed-at"].startswith("(a copy of another's mark, ignored")
    assert view.state == "healthy"


def test_older_versions_ledger_and_marks() -> None:
    bad, good = f.rs_name(V2), f.rs_name(V1)
    old = json.dumps(
        [{"failed": bad, "restored": good, "failure": "2026-11-25T10:00:00Z", "at": "2026-11-25T10:00:05Z"}]
    )
    d = named(f.deployment(V1, 3, complete=True, annotations={ledger.KEY: old}), "old")
    objects = [
        f.replicaset(3, V1, marks={history.HEALTHY_AT: "2026-11-25T10:01:00Z"}, available=3),
        f.replicaset(2, V2),
    ]
    row = core.row(DEPLOYMENT, d, objects)
    assert (row.state, row.last_healthy) == ("rolled back", 3)
    assert row.last_rollback is not None and (row.last_rollback.from_revision, row.last_rollback.to_revision) == (2, 3)
    assert render.rollback_text(row.last_rollback, NOW) == "25h ago 2 -> 3 unknown reason"


def test_ages() -> None:
    assert [
        render.age(s, NOW)
        for s in (
            "2026-11-26T11:59:15Z",
            "2026-11-26T11:00:00Z",
            "2026-11-25T12:00:00Z",
            "2026-11-20T12:00:00Z",
            "",
            "junk",
        )
    ] == [
        "45s",
        "60m",
        "24h",
        "6d",
        "-",
        "-",
    ]


def test_structured_output_is_stable() -> None:
    data = json.loads(render.structured(rows(), "json"))
    assert [i["name"] for i in data["items"]] == ["worker", "api", "cart", "search", "web"]
    assert list(data["items"][0]) == [
        "namespace",
        "kind",
        "name",
        "mode",
        "watching",
        "revision",
        "state",
        "last_healthy",
        "last_rollback",
        "revert_pr",
    ]
    assert yaml.safe_load(render.structured(rows(), "yaml")) == data


def test_a_daemonset_at_rest_is_healthy_and_rolling_out_while_a_node_is_owed_its_pod() -> None:
    """A DaemonSet's completion names no ControllerRevision (daemonset.rollout): the template's is meant."""
    daemonset = KINDS["DaemonSet"]
    v1, v2 = "agent:1.0.0", "agent:2.0.0"
    at_rest = f.daemonset(v1, updated=2, available=2, template_generation=1, generation=1)
    marked = f.ds_revision(1, v1, healthy_at="revision 1 generation 1")
    row = core.row(daemonset, at_rest, [marked])
    assert (row.kind, row.revision, row.state, row.last_healthy) == ("DaemonSet", 1, core.HEALTHY, 1)
    rolling = core.row(daemonset, f.daemonset(v2), [marked, f.ds_revision(2, v2)])
    assert (rolling.revision, rolling.state, rolling.last_healthy) == (2, core.ROLLING_OUT, 1)
    done = f.daemonset(v2, updated=2, available=2)
    assert core.row(daemonset, done, [marked, f.ds_revision(2, v2)]).state == core.COMPLETE  # not marked yet


def test_a_statefulset_whose_restored_pods_fail_too_is_abandoned() -> None:
    """decision.stuck records the abandonment on the restored revision, unbound: "abandoned <rollback id>"."""
    statefulset = KINDS["StatefulSet"]
    v1, v2 = "app:1.0.0", "app:2.0.0"
    entry = ledger.Entry(f.sts_name(v2), f.sts_name(v1), "2026-11-26T11:40:00Z", "2026-11-26T11:41:00Z", "X", 2, 5)
    sts = f.statefulset(v1, current=v2, update=v1, annotations={ledger.KEY: ledger.dump((entry,))})
    mark = {core.STUCK_MARK: f"abandoned {entry.id}"}
    history_ = [f.sts_revision(2, v2), f.sts_revision(3, v1, annotations=mark)]
    assert core.row(statefulset, sts, history_).state == core.ABANDONED
    restored = next(r for r in core.detail(statefulset, sts, history_, []).revisions if r.number == 3)
    assert (restored.state, restored.marks["stuck-pods"]) == (core.ABANDONED, f"abandoned {entry.id}")
    other = {core.STUCK_MARK: "abandoned an-earlier-rollback 2026-11-01T00:00:00Z"}
    assert core.row(statefulset, sts, [f.sts_revision(2, v2), f.sts_revision(3, v1, annotations=other)]).state == (
        core.ROLLING_OUT
    )


def test_kinds_as_kubectl_spells_them() -> None:
    for text in ("deployment", "Deployment", "deployments", "deploy", "deployments.apps"):
        assert shell.kind_of(text) == "Deployment"
    for text in ("sts", "statefulset", "StatefulSets", "statefulsets.apps"):
        assert shell.kind_of(text) == "StatefulSet"
    for text in ("ds", "daemonset", "daemonsets", "daemonsets.apps"):
        assert shell.kind_of(text) == "DaemonSet"


def test_the_cli_needs_none_of_the_operators_dependencies() -> None:
    """Installed without the `operator` extra: `status` works, anything else is one line saying what to install."""
    code = (
        "import sys\n"
        "from autorollback import main\n"
        "sys.modules.update(dict.fromkeys(main.OPERATOR_MODULES))\n"  # None: not installed, for import and find_spec
        "print(main.main(['status', '--help']) if sys.argv[1] == 'status' else main.main(['run', '-A']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, "status"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "NAME|KIND/NAME" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-c", code, "run"], capture_output=True, text=True, check=False)
    assert (r.returncode, r.stdout) == (0, "2\n"), r
    assert r.stderr == (
        "autorollback: error: the operator's dependencies are not installed (kopf, prometheus_client, structlog, "
        "promql_parser, github, gitlab): pip install 'autorollback[operator]' (`autorollback status` works without them)\n"
    )


def test_both_commands_reach_the_status_cli(monkeypatch) -> None:
    from autorollback import main as cli

    calls = []
    monkeypatch.setattr(shell, "main", lambda argv, prog="": calls.append((argv, prog)) or 0)
    assert cli.main(["status", "-n", "shop", "web"]) == 0
    monkeypatch.setattr(sys, "argv", ["kubectl-autorollback", "status", "-A", "-o", "json"])
    assert shell.plugin() == 0
    monkeypatch.setattr(sys, "argv", ["kubectl-autorollback", "rollback"])
    assert shell.plugin() == 1
    assert calls == [(["-n", "shop", "web"], ""), (["-A", "-o", "json"], "kubectl autorollback status")]


class Collection:
    """An API server's answers for one collection, for shell.follow: each watch is a script of events."""

    def __init__(self, *watches: list[dict]):
        self.watches = list(watches)
        self.listed = 0
        self.started_at: list[str] = []

    def request(self, method: str, path: str, query: dict) -> dict:
        self.listed += 1
        return {"metadata": {"resourceVersion": f"{self.listed}00"}, "items": []}

    def watch(self, path: str, query: dict, idle: float, stopped):
        self.started_at.append(query["resourceVersion"])
        self.idle = idle
        script = self.watches.pop(0)
        if not self.watches:
            stopped.set()
        if isinstance(script, Exception):
            raise script
        yield from script


def changed(version: str, type_: str = "MODIFIED") -> dict:
    return {"type": type_, "object": {"metadata": {"resourceVersion": version}}}


def test_follow_watches_from_the_list_resumes_from_the_last_version_and_lists_again_when_gone() -> None:
    import queue
    import threading

    from autorollback import kube

    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    api = Collection(
        [changed("101"), {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}}],  # ends: resume
        [changed("151"), gone],  # too old: list again
        kube.ApiError(410, "Gone", "too old resource version"),  # the same, as the request's answer
        [changed("301", "DELETED")],
    )
    out: queue.Queue[str] = queue.Queue()
    shell.follow(api, "/apis/apps/v1/replicasets", {}, out, threading.Event())  # type: ignore[arg-type]
    assert api.started_at == ["100", "150", "200", "300"]
    events = [out.get_nowait() for _ in range(out.qsize())]
    assert events == ["/apis/apps/v1/replicasets"] * 6  # a list, 101, 151, a list, a list, 301 (no bookmark)


def test_follow_tells_only_relevant_changes() -> None:
    import queue
    import threading

    ours = {"type": "MODIFIED", "object": {"metadata": {"resourceVersion": "101", "name": "ours"}}}
    api = Collection([ours, {**changed("102"), "object": {"metadata": {"resourceVersion": "102", "name": "x"}}}])
    out: queue.Queue[str] = queue.Queue()
    relevant = lambda obj: obj["metadata"].get("name") == "ours"  # noqa: E731
    shell.follow(api, "/apis/apps/v1/replicasets", {}, out, threading.Event(), relevant)  # type: ignore[arg-type]
    assert [out.get_nowait() for _ in range(out.qsize())] == ["/apis/apps/v1/replicasets"] * 2  # the list, ours


def test_a_workload_at_rest_is_not_rolling_out() -> None:
    """STATE says "rolling out" only while the adapter's rollout_in_progress does: at rest and not
    complete, the revision's marks say what is known."""
    daemonset, statefulset = KINDS["DaemonSet"], KINDS["StatefulSet"]
    v1, v2 = "agent:1.0.0", "agent:2.0.0"
    marked = f.ds_revision(1, v1, healthy_at="revision 1 generation 1")
    node_not_ready = f.daemonset(v1, updated=2, available=1, template_generation=1, generation=1)
    assert core.row(daemonset, node_not_ready, [marked]).state == core.HEALTHY
    no_nodes = f.daemonset(v1, desired=0, updated=0, available=0, template_generation=1, generation=1)
    assert core.row(daemonset, no_nodes, [marked]).state == core.HEALTHY
    on_delete = f.daemonset(v2, strategy="OnDelete")
    assert core.row(daemonset, on_delete, [marked, f.ds_revision(2, v2)]).state == core.COMPLETE
    a1, a2 = "app:1.0.0", "app:2.0.0"
    staged = f.statefulset(a2, current=a1, updated=0, ready=3, partition=3)
    assert core.row(statefulset, staged, [f.sts_revision(1, a1), f.sts_revision(2, a2)]).state != core.ROLLING_OUT
    sts_on_delete = f.statefulset(a2, current=a1, updated=0, ready=3, strategy="OnDelete")
    assert core.row(statefulset, sts_on_delete, [f.sts_revision(1, a1), f.sts_revision(2, a2)]).state != (
        core.ROLLING_OUT
    )


def reads(answers: list):
    """A read for shell._watch: each call the next answer, raised when it is an exception."""

    def read():
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return read


def test_watch_keeps_the_last_frame_while_the_api_server_does_not_answer(monkeypatch, capsys) -> None:
    """--watch outlives an API server restart, a 429, a 500: "stale since", read again with a back-off,
    drawn again once it answers; an error that is no blip still ends it."""
    import io

    import pytest

    from autorollback import kube

    monkeypatch.setattr(shell, "FALLBACK", 0.01)
    monkeypatch.setattr(shell, "POLL", 0.01)
    monkeypatch.setattr(shell, "SETTLE", 0.0)
    first, later = rows()[:1], rows()[1:2]
    answers: list = [
        shell.Unreachable("cannot reach the Kubernetes API server at https://k: refused"),
        kube.ApiError(429, "Too Many Requests", "slow down"),
        kube.ApiError(500, "Internal Server Error", "etcd"),
        later,
        kube.ApiError(404, "Not Found", "gone"),
    ]

    out = io.StringIO()
    with pytest.raises(kube.ApiError, match="gone"):
        shell._watch(None, [], reads(answers), first, lambda v: f"frame {v[0].name}\n", out)  # type: ignore[arg-type]
    assert out.getvalue() == "\nframe api\n"
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith("warning: stale since ") and "cannot reach" in warning


def test_a_watch_degraded_is_so_until_it_runs_again() -> None:
    degraded: set[str] = set()
    for message in (shell.DEGRADED + "/a", shell.DEGRADED + "/b", "/a"):
        shell.note(message, degraded)
    assert degraded == {"/b"}


class Stopped:
    """threading.Event for follow, recording its waits instead of waiting."""

    def __init__(self) -> None:
        self.flag = False
        self.waits: list[float] = []

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        self.flag = True

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return self.flag


def test_follow_backs_off_on_an_error_event_and_lists_again_only_when_gone() -> None:
    """An ERROR event other than 410 is no reason to list again at once (a tight loop): back off from
    0.8 s, doubling, up to 30 s; 403 is a watch not allowed (the caller polls); 410 lists again at once."""
    import queue

    def error(code: int) -> list[dict]:
        return [{"type": "ERROR", "object": {"kind": "Status", "code": code, "message": f"error {code}"}}]

    api = Collection(*[error(500)] * 8, error(410), [changed("1001")], error(403), [])
    out: queue.Queue[str] = queue.Queue()
    stopped = Stopped()
    shell.follow(api, "/apis/apps/v1/replicasets", {}, out, stopped)  # type: ignore[arg-type]
    assert stopped.waits == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, shell.FALLBACK]
    assert api.listed == 10  # the first list, one after each error 500 and after 410; none after 403
    messages = [out.get_nowait() for _ in range(out.qsize())]
    assert messages.count(shell.DEGRADED + "/apis/apps/v1/replicasets") == 9


def test_history_forbidden_shows_the_row_with_an_unknown_state(capsys) -> None:
    """A role that may list statefulsets but not controllerrevisions: every row is shown, the ones
    whose history may not be read with an unknown state, and one warning per kind."""
    from types import SimpleNamespace

    from autorollback import kube

    sts = f.statefulset("app:2.0.0")
    other = f.statefulset("app:2.0.0")
    other["metadata"]["name"] = "other"

    class Api:
        configuration = SimpleNamespace(host="https://k")

        def request(self, method: str, path: str, query: dict | None = None, **_: object) -> dict:
            if path.endswith("/controllerrevisions"):
                raise kube.ApiError(403, "Forbidden", "controllerrevisions is forbidden")
            return {"items": [sts, other] if path.endswith("/statefulsets") else []}

    shell._WARNED.clear()
    got = shell.rows(Api(), "ns")  # type: ignore[arg-type]
    assert [(r.kind, r.name, r.state, r.revision) for r in got] == [
        ("StatefulSet", "web", core.UNKNOWN, got[0].revision),
        ("StatefulSet", "other", core.UNKNOWN, got[0].revision),
    ]
    assert capsys.readouterr().err == (
        "warning: forbidden: cannot read controllerrevisions in namespace ns (state unknown)\n"
    )


def test_a_stuck_pods_mark_of_an_older_rollback_abandons_no_revision_in_the_detail_view() -> None:
    """The detail view's revision state follows the row's rule: only the newest rollback's mark counts."""
    statefulset = KINDS["StatefulSet"]
    v1, v2 = "app:1.0.0", "app:2.0.0"
    entry = ledger.Entry(f.sts_name(v2), f.sts_name(v1), "2026-11-26T11:40:00Z", "2026-11-26T11:41:00Z", "X", 2, 5)
    sts = f.statefulset(v1, current=v2, update=v1, annotations={ledger.KEY: ledger.dump((entry,))})
    other = {core.STUCK_MARK: "abandoned an-earlier-rollback 2026-11-01T00:00:00Z"}
    history_ = [f.sts_revision(2, v2), f.sts_revision(3, v1, annotations=other)]
    restored = next(r for r in core.detail(statefulset, sts, history_, []).revisions if r.number == 3)
    assert restored.state != core.ABANDONED
    assert restored.marks["stuck-pods"] == other[core.STUCK_MARK]  # still shown


def test_a_failed_watch_request_says_the_api_servers_message() -> None:
    """The watch request's body is read by the stream (not preloaded): its Status message is kept."""
    import threading
    from types import SimpleNamespace

    import pytest

    from autorollback import kube

    class Response:
        status, reason, headers = 403, "Forbidden", {}

        def __init__(self) -> None:
            self.body = b'{"kind": "Status", "message": "replicasets is forbidden: cannot watch"}'

        @property
        def data(self) -> bytes:
            return b""  # urllib3: once read, the body is not kept

        def read(self) -> bytes:
            body, self.body = self.body, b""
            return body

        def close(self) -> None:
            pass

        def release_conn(self) -> None:
            pass

    pool = SimpleNamespace(request=lambda *a, **k: Response())
    api = kube.Client(SimpleNamespace(host="https://k", auth_settings=dict), pool)  # type: ignore[arg-type]
    with pytest.raises(kube.ApiError) as e:
        next(api.watch("/apis/apps/v1/replicasets", {}, 1.0, threading.Event()))
    assert (e.value.status, e.value.message) == (403, "replicasets is forbidden: cannot watch")


def test_watch_in_yaml_draws_a_stream_of_documents(monkeypatch) -> None:
    import io

    import pytest

    monkeypatch.setattr(shell, "FALLBACK", 0.01)
    monkeypatch.setattr(shell, "SETTLE", 0.0)
    first, later = rows()[:1], rows()[1:2]
    answers: list = [later, KeyboardInterrupt()]

    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        shell._watch(None, [], reads(answers), first, lambda v: render.structured(v, "yaml"), out, "---\n")  # type: ignore[arg-type]
    stream = render.structured(first, "yaml") + out.getvalue()
    assert [d["items"][0]["name"] for d in yaml.safe_load_all(stream)] == ["web", "api"]


def test_a_quiet_watch_is_not_opened_again_before_its_bookmark() -> None:
    """The API server sends a bookmark about every minute: a watch silent for less is not lost."""
    import queue

    api = Collection([])
    shell.follow(api, "/apis/apps/v1/replicasets", {}, queue.Queue(), Stopped())  # type: ignore[arg-type]
    assert api.idle > 60 + 10


def test_follow_outlives_a_malformed_answer() -> None:
    """Anything else a watch raises (a line that is no JSON) is an error to back off from, not the end."""
    import queue

    api = Collection(ValueError("Expecting value: line 1 column 1"), [changed("201")])  # type: ignore[arg-type]
    out: queue.Queue[str] = queue.Queue()
    shell.follow(api, "/apis/apps/v1/replicasets", {}, out, Stopped())  # type: ignore[arg-type]
    assert api.started_at == ["100", "200"]
    path = "/apis/apps/v1/replicasets"
    assert [out.get_nowait() for _ in range(out.qsize())] == [path, shell.DEGRADED + path, path, path]


def test_usage_without_the_operators_dependencies() -> None:
    """`autorollback --help` and a bare `autorollback` give the usage, not the install error."""
    code = (
        "import sys\n"
        "from autorollback import main\n"
        "sys.modules.update(dict.fromkeys(main.OPERATOR_MODULES))\n"
        "sys.exit(main.main(sys.argv[1:]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, check=False)
    assert (r.returncode, r.stderr) == (0, "") and r.stdout.startswith("usage: autorollback {status,run}"), r
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (r.returncode, r.stdout) == (2, "") and r.stderr.startswith("usage: autorollback {status,run}"), r


def test_rows_are_listed_in_pages() -> None:
    from types import SimpleNamespace

    pages = {"": ("a", [named(f.deployment(V1, 1, complete=True), "web")]), "a": ("", [healthy()[0]])}
    asked = []

    class Api:
        configuration = SimpleNamespace(host="https://k")

        def request(self, method: str, path: str, query: dict | None = None, **_: object) -> dict:
            if not path.endswith("/deployments"):
                return {"items": []}
            asked.append(dict(query or {}))
            token, items = pages[(query or {}).get("continue", "")]
            return {"metadata": {"continue": token}, "items": items}

        def replicasets_of(self, workload: dict) -> list[dict]:
            return []

    got = shell.rows(Api(), "shop")  # type: ignore[arg-type]
    assert len(got) == 2 and asked == [{"limit": 500}, {"limit": 500, "continue": "a"}]


def test_watch_reads_again_for_a_workload_opted_in_or_shown_only() -> None:
    """On a busy cluster most workloads never opted in: their changes are no reason to read again."""
    shown = [{("shop", "Deployment", "web")}]
    relevant = shell.workload("Deployment", shown)
    opted_out_since = named(f.deployment(V1, 1, annotations={"autorollback.io/enabled": "false"}), "web")
    never = named(f.deployment(V1, 1, annotations={"autorollback.io/enabled": "false"}), "other")
    new = named(f.deployment(V1, 1), "new")
    assert [relevant(d) for d in (opted_out_since, never, new)] == [True, False, True]
