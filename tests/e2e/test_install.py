"""The install story on the local control plane: Helm chart, least-privilege RBAC, deploy/."""

import base64
import filecmp
import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from . import kit
from .test_workload_kinds import BREAK, rolled_out, statefulset

CHART = kit.ROOT / "charts/autorollback"
ALL_FEATURES = CHART / "ci/all-features-values.yaml"
V1, V2 = "registry.example/web:1.0.0", "registry.example/web:2.0.0"
_crds = threading.Lock()


@pytest.fixture(scope="session")
def monitoring_crds() -> None:
    """ServiceMonitor and PrometheusRule CRDs from the pinned prometheus-operator module."""
    with _crds:
        for crd in kit.monitoring_crds():
            kit.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
        for name in ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"):
            kit.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def render(ns: str, *values: str) -> str:
    return kit.helm("template", "autorollback", str(CHART), "--namespace", ns, *values).stdout


def kinds(manifests: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in manifests.splitlines() if line.startswith("kind:")]


def test_helm_lint() -> None:
    for values in ([], ["-f", str(ALL_FEATURES)], ["--set", "watchNamespaces={a,b}"], ["--set", "kinds={DaemonSet}"]):
        out = kit.helm("lint", "--strict", str(CHART), *values).stdout
        assert "0 chart(s) failed" in out


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "imagee.tag=1.0"], "additional properties 'imagee' not allowed"),
        (["--set", "logFormat=xml"], "value must be one of 'json', 'console'"),
        (["--set", "watchNamespaces={Not_A_Namespace}"], "does not match pattern"),
        (["--set", "serviceMonitor.enabeld=true"], "additional properties 'enabeld' not allowed"),
        (["--set", "kinds={Deployment,CronJob}"], "value must be one of 'Deployment', 'StatefulSet', 'DaemonSet'"),
        (["--set-json", "kinds=[]"], "minItems"),
    ],
)
def test_a_typo_in_values_fails_with_a_clear_message(values: list[str], message: str) -> None:
    proc = kit.helm("template", "autorollback", str(CHART), *values, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            [],
            {
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Service",
                "Deployment",
                "PodDisruptionBudget",
            },
        ),
        (
            ["-f", str(ALL_FEATURES)],
            {
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Service",
                "Deployment",
                "ServiceMonitor",
                "PrometheusRule",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "ConfigMap",  # the metric checks' catalog
            },
        ),
    ],
)
def test_rendered_chart_is_accepted_by_the_api_server(namespace: str, monitoring_crds, values, expected) -> None:
    manifests = render(namespace, *values)
    assert set(kinds(manifests)) == expected
    out = kit.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifests).stdout
    assert out.count("(server dry run)") == len(kinds(manifests))


def test_the_service_monitor_keeps_the_workloads_namespace_label() -> None:
    monitor = next(
        d for d in yaml.safe_load_all(render("ops", "-f", str(ALL_FEATURES))) if d and d["kind"] == "ServiceMonitor"
    )
    assert [e.get("honorLabels") for e in monitor["spec"]["endpoints"]] == [True]


def test_hardened_pod_spec() -> None:
    deployment = next(d for d in yaml.safe_load_all(render("ops")) if d and d["kind"] == "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"  # two replicas, one Lease
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args and "--leader-election-lease-duration=15" in args
    assert "--checkpoint-secret=autorollback-checkpoint" in args  # <fullname>-checkpoint, in the Role by name
    rules = [
        r
        for d in yaml.safe_load_all(render("ops", "--set", "checkpointSecret=my-key"))
        if d and d["kind"] == "Role"
        for r in d["rules"]
        if r["resources"] == ["secrets"]
    ]
    assert rules == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["my-key"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    anti = spec["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    c = pod["containers"][0]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["args"][0] == "--all-namespaces" and c["image"].endswith(":0.1.0")
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def operator_args(*values: str) -> list[str]:
    deployment = next(d for d in yaml.safe_load_all(render("ops", *values)) if d and d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def git_values(tmp_path: Path, git: dict) -> list[str]:
    values = tmp_path / "git-values.yaml"
    values.write_text(yaml.safe_dump({"gitRevert": {"enabled": True, "secretName": "forge-tokens", **git}}))
    return ["-f", str(values)]


def test_git_rules_render_one_flag_per_rule(tmp_path: Path) -> None:
    args = operator_args(
        *git_values(
            tmp_path,
            {
                "allowedRepos": {
                    "*": [
                        "https://git.example.com/{namespace}/*",
                        {
                            "url": "https://git.example.com/platform/gitops.git",
                            "paths": ["apps/{namespace}/**", "base/*.yaml"],
                            "credential": "gitops-bot",
                        },
                    ],
                    "payments-*": [
                        {"url": "https://gitlab.example.com/payments/**"},
                        {"url": "https://git.example.com:8443/pay/*.git", "credential": "pay"},
                    ],
                },
                "sources": "discovered",
            },
        )
    )
    assert [a for a in args if a.startswith("--git-allowed-repo")] == [
        "--git-allowed-repo=*=https://git.example.com/{namespace}/*",
        "--git-allowed-repo=*=https://git.example.com/platform/gitops.git paths=apps/{namespace}/**,base/*.yaml "
        "credential=gitops-bot",
        "--git-allowed-repo=payments-*=https://gitlab.example.com/payments/**",
        "--git-allowed-repo=payments-*=https://git.example.com:8443/pay/*.git credential=pay",
    ]
    assert "--git-sources=discovered" in args
    assert {"--git-revert-timeout=300", "--git-max-file-bytes=1048576", "--git-namespace-queue=1"} <= set(args)


def test_git_revert_without_rules_renders_and_allows_nothing(tmp_path: Path) -> None:
    args = operator_args(*git_values(tmp_path, {"maxFileBytes": 52428800, "revertTimeoutSeconds": 120}))
    assert not [a for a in args if a.startswith("--git-allowed-repo")]
    assert {"--git-sources=any", "--git-max-file-bytes=52428800", "--git-revert-timeout=120"} <= set(args)
    assert not [a for a in operator_args() if a.startswith("--git-")]  # off: no Git flag at all


def test_the_old_list_of_repositories_fails_with_the_new_form(tmp_path: Path) -> None:
    values = git_values(tmp_path, {"allowedRepos": ["https://git.example.com/platform/*"]})
    proc = kit.helm("template", "autorollback", str(CHART), *values, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "gitRevert.allowedRepos is a map" in proc.stderr, proc.stderr
    assert '"*": ["https://git.example.com/platform/*"]' in proc.stderr, proc.stderr  # the same rules, new form


@pytest.mark.parametrize(
    ("git", "message"),
    [
        (
            {"allowedRepos": {"*": [{"url": "https://git.example.com/a/*", "path": ["apps/**"]}]}},
            "additional properties 'path' not allowed",
        ),
        ({"allowedRepos": {"*": [{"paths": ["apps/**"]}]}}, "missing property 'url'"),
        ({"allowedRepos": {"*": ["git@git.example.com:team/app.git"]}}, "does not match pattern"),
        (
            {"allowedRepos": {"*": [{"url": "https://git.example.com/a/*", "credential": "a b"}]}},
            "does not match pattern",
        ),
        ({"allowedRepos": {"Team A": ["https://git.example.com/a/*"]}}, "does not match pattern"),
        ({"sources": "all"}, "value must be one of 'discovered', 'annotations', 'any'"),
        ({"maxFileBytes": 0}, "minimum"),
    ],
)
def test_git_rules_are_checked_by_the_schema(tmp_path: Path, git: dict, message: str) -> None:
    proc = kit.helm("template", "autorollback", str(CHART), *git_values(tmp_path, git), check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_metric_check_values_render_flags_the_operator_accepts(tmp_path: Path) -> None:
    """All features on: the rendered flags parse, the catalog ConfigMap loads without a refused
    entry, the token Secret and CA ConfigMap are mounted where the flags say, Prometheus and
    Alertmanager are reachable through the NetworkPolicy."""
    from autorollback import cli

    docs = [d for d in yaml.safe_load_all(render("ops", "-f", str(ALL_FEATURES))) if d]
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(configmap["data"]["catalog.yaml"])
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]
    args = pod["spec"]["containers"][0]["args"]
    assert "--checks-catalog=/etc/autorollback/checks/catalog.yaml" in args
    parsed = cli.parser().parse_args(
        ["run", *(f"--checks-catalog={catalog}" if a.startswith("--checks-catalog=") else a for a in args)]
    )
    settings = cli.checks_settings(parsed)
    assert list(settings.catalog.templates) == ["error-ratio"] and not settings.catalog.errors
    assert settings.catalog.templates["error-ratio"].params["threshold"].high == 0.5
    prom = settings.prometheus
    assert prom is not None and prom.url == "https://prometheus.monitoring.svc:9091" and prom.timeout == 5
    assert prom.bearer_token_file == "/etc/autorollback/prometheus-token/token"
    assert prom.ca_file == "/etc/autorollback/prometheus-ca/ca.crt"
    assert settings.promql_namespaces == {"platform-tools"} and settings.alert_labels == ("namespace", "deployment")
    assert (settings.max_rollbacks, settings.rollbacks_window) == (5, 1800.0)
    assert settings.alertmanager_url == "http://alertmanager-operated.monitoring.svc:9093"
    mounts = {m["name"]: m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mounts["prometheus-token"] == "/etc/autorollback/prometheus-token"
    assert volumes["prometheus-token"]["secret"]["secretName"] == "prometheus-reader"
    assert volumes["prometheus-ca"]["configMap"]["name"] == "prometheus-ca"
    assert volumes["checks-catalog"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert pod["metadata"]["annotations"]["checksum/checks-catalog"]  # a new catalog restarts the pods
    egress = next(d for d in docs if d["kind"] == "NetworkPolicy")["spec"]["egress"]
    assert egress[2]["ports"] == [{"port": 9091, "protocol": "TCP"}]  # the URL's port
    assert egress[2]["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert egress[3] == {"ports": [{"port": 9093, "protocol": "TCP"}]}  # no peers given: any address


def test_metric_checks_off_by_default_and_ports_follow_the_url() -> None:
    assert not [
        a for a in operator_args() if a.startswith(("--prometheus", "--checks", "--alert", "--metric-rollbacks"))
    ]
    docs = [
        d
        for d in yaml.safe_load_all(
            render("ops", "--set", "networkPolicy.enabled=true", "--set", "prometheus.url=https://prom.example")
        )
        if d
    ]
    egress = next(d for d in docs if d["kind"] == "NetworkPolicy")["spec"]["egress"]
    assert egress[2:] == [{"ports": [{"port": 443, "protocol": "TCP"}]}]  # https without a port: 443
    assert not [d for d in docs if d["kind"] == "ConfigMap"]
    args = operator_args("--set", "prometheus.url=http://prom:9090", "--set", "prometheus.bearerTokenFile=/t")
    assert {"--prometheus-url=http://prom:9090", "--prometheus-bearer-token-file=/t", "--prometheus-timeout=10"} <= set(
        args
    )
    assert "--alert-labels=namespace,deployment" in args and "--metric-rollbacks-max=3" in args


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "prometheus.url=prometheus:9090"], "does not match pattern"),
        (["--set", "prometheus.url=http://user:pw@prometheus:9090"], "does not match pattern"),
        (["--set", "prometheus.timeout=0"], "exclusiveMinimum"),
        (["--set", "checks.catalog.Error_Ratio.query=up"], "does not match pattern"),
        (["--set", "checks.catalog.error-ratio.query=up"], "missing property 'failIf'"),
        (["--set", "alerts.labels={deployment-name}"], "does not match pattern"),
        (["--set", "checks.maxRollbacks=0"], "minimum"),
        (
            ["--set", "prometheus.url=http://p:9090", "--set", "prometheus.caConfigMap.name=a", "--set",
             "prometheus.caSecret.name=b"],
            "name one of them",
        ),
    ],
)  # fmt: skip
def test_metric_check_values_are_checked(values: list[str], message: str) -> None:
    proc = kit.helm("template", "autorollback", str(CHART), *values, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_install_creates_everything_and_uninstall_removes_it(namespace: str) -> None:
    release = f"ar-{namespace[-5:]}"
    kit.helm("install", release, str(CHART), "--namespace", namespace, "--wait", "--timeout", "120s")
    objects = kit.kubectl_json(
        "-n", namespace, "get", "deployment,serviceaccount,service", "-l", f"app.kubernetes.io/instance={release}"
    )["items"]
    assert {o["kind"] for o in objects} == {"Deployment", "ServiceAccount", "Service"}
    assert kit.kubectl("get", "clusterrole", f"{release}-autorollback").returncode == 0
    assert kit.kubectl("get", "clusterrolebinding", f"{release}-autorollback").returncode == 0
    assert (
        "kubectl annotate deployment/<name> autorollback.io/enabled=true"
        in kit.helm("get", "notes", release, "-n", namespace).stdout
    )

    kit.helm("uninstall", release, "--namespace", namespace, "--wait")
    left = kit.kubectl_json(
        "-n", namespace, "get", "deployment,serviceaccount,service", "-l", f"app.kubernetes.io/instance={release}"
    )["items"]
    assert left == []
    assert kit.kubectl("get", "clusterrole", f"{release}-autorollback", check=False).returncode != 0
    assert kit.kubectl("get", "clusterrolebinding", f"{release}-autorollback", check=False).returncode != 0


def can_i(service_account: str, *args: str) -> bool:
    proc = kit.kubectl("auth", "can-i", *args, f"--as={service_account}", check=False)
    return proc.stdout.strip() == "yes"


def test_operator_with_the_charts_service_account_rolls_back(namespace: str, operator_factory, tmp_path: Path) -> None:
    ns = namespace
    release = f"ar-{ns[-5:]}"
    # Only the RBAC objects: the operator itself runs here, with a token of the chart's ServiceAccount.
    kit.helm("install", release, str(CHART), "--namespace", ns, "--set", "metrics.service.enabled=false")
    sa_name = f"{release}-autorollback"
    sa = f"system:serviceaccount:{ns}:{sa_name}"
    try:
        assert not can_i(sa, "get", "secrets", "-A") and not can_i(sa, "list", "secrets", "-n", ns)
        assert not can_i(sa, "delete", "deployments", "-n", ns) and not can_i(sa, "delete", "replicasets", "-n", ns)
        assert not can_i(sa, "update", "deployments", "-n", ns) and not can_i(sa, "create", "pods", "-n", ns)
        assert can_i(sa, "patch", "deployments", "-n", ns) and can_i(sa, "watch", "deployments", "-A")
        for kind in ("statefulsets", "daemonsets"):  # the other watched kinds: as Deployments, no more
            assert can_i(sa, "patch", kind, "-n", ns) and can_i(sa, "watch", kind, "-A")
            assert not can_i(sa, "update", kind, "-n", ns) and not can_i(sa, "delete", kind, "-n", ns)
        assert can_i(sa, "list", "controllerrevisions", "-n", ns) and can_i(
            sa, "patch", "controllerrevisions", "-n", ns
        )
        assert not can_i(sa, "watch", "controllerrevisions", "-A") and not can_i(
            sa, "delete", "controllerrevisions", "-A"
        )
        assert can_i(sa, "watch", "pods", "-A")  # fail-fast signals
        # a StatefulSet stuck by its rollback (deleteStuckPods, on by default): its broken pods, nothing else
        assert can_i(sa, "delete", "pods", "-n", ns) and not can_i(sa, "deletecollection", "pods", "-n", ns)
        assert not can_i(sa, "delete", "persistentvolumeclaims", "-n", ns) and not can_i(sa, "update", "pods", "-n", ns)
        lease = f"leases.coordination.k8s.io/{sa_name}"  # the chart's fullname names the Lease and the account
        assert all(can_i(sa, verb, lease, "-n", ns) for verb in ("get", "update"))
        assert can_i(sa, "create", "leases.coordination.k8s.io", "-n", ns)  # create cannot be named (upstream too)
        assert not can_i(sa, "update", "leases.coordination.k8s.io/another-lease", "-n", ns)
        assert not can_i(sa, "get", "leases.coordination.k8s.io", "-n", "default")  # its own namespace only
        assert not can_i(sa, "delete", "leases.coordination.k8s.io", "-n", ns)
        # the checkpoint key: one Secret by name in its own namespace (create cannot be named)
        secret = f"secrets/{sa_name}-checkpoint"
        assert can_i(sa, "get", secret, "-n", ns) and can_i(sa, "create", "secrets", "-n", ns)
        assert not can_i(sa, "get", "secrets/another-secret", "-n", ns)
        assert not any(can_i(sa, verb, secret, "-n", ns) for verb in ("update", "patch", "delete", "list", "watch"))
        assert not can_i(sa, "get", secret, "-n", "default") and not can_i(sa, "create", "secrets", "-n", "default")

        config = kit.token_kubeconfig(ns, sa_name, tmp_path / "chart-sa.kubeconfig")
        kit.release(ns, "web", V1, annotations={"autorollback.io/enabled": "true"})
        # as the chart runs it: leader election on, with a Lease the chart's Role allows
        op = operator_factory(
            "-n",
            ns,
            config=str(config),
            extra=("--leader-elect", "--leader-election-name", sa_name, "--checkpoint-secret", f"{sa_name}-checkpoint"),
            env={"POD_NAMESPACE": ns},
        )
        key = kit.kubectl_json("-n", ns, "get", "secret", f"{sa_name}-checkpoint")["data"]["key"]  # created by it
        assert len(base64.b64decode(key)) == 32
        kit.wait_for(lambda: kit.is_available(ns, "web"), 90, "revision 1")
        # pod-level fail-fast signals with the chart's RBAC (the deadline is 600 s)
        kit.release(
            ns,
            "web",
            V2,
            failure="crash",
            progress_deadline=600,
            annotations={"autorollback.io/enabled": "true", "autorollback.io/fail-on": "CrashLoopBackOff"},
        )
        d = kit.wait_for(
            lambda: d if (d := kit.is_available(ns, "web")) and kit.revision(d) == 3 else None,
            120,
            "the rollback to revision 3",
        )
        assert kit.image_of(d) == V1
        reasons = kit.reasons(ns, "web")
        assert "RolloutFailed" in reasons and "RolledBack" in reasons
        assert kit.get_deployment(ns, "web")["metadata"]["annotations"]["kubernetes.io/change-cause"].endswith(
            ": CrashLoopBackOff"
        )
        assert (
            op.metric("autorollback_rollbacks_total", kind="Deployment", namespace=ns, name="web", result="success")
            == 1
        )
        assert op.metric("autorollback_leader") == 1
        assert not [line for line in op.lines() if line.get("level") == "error" or "Forbidden" in json.dumps(line)]
    finally:
        kit.helm("uninstall", release, "--namespace", ns, check=False)


def test_watch_namespaces_grants_roles_only_there(new_namespace) -> None:
    home, watched, other = new_namespace(), new_namespace(), new_namespace()
    release = f"ar-{home[-5:]}"
    kit.helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        home,
        "--set",
        f"watchNamespaces={{{watched}}}",
        "--set",
        "failFast.podSignals=false",
        "--set",
        "deleteStuckPods=false",
    )
    try:
        sa = f"system:serviceaccount:{home}:{release}-autorollback"
        assert can_i(sa, "patch", "deployments", "-n", watched) and can_i(sa, "list", "replicasets", "-n", watched)
        assert not can_i(sa, "watch", "replicasets", "-n", watched)  # only the verbs the operator uses
        assert not can_i(sa, "list", "deployments", "-n", other)
        assert not can_i(sa, "list", "deployments", "-A")
        assert kit.kubectl("get", "clusterrole", f"{release}-autorollback", check=False).returncode != 0
        args = kit.kubectl_json("-n", home, "get", "deployment", f"{release}-autorollback")["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
        assert f"--namespace={watched}" in args and "--all-namespaces" not in args
        assert "--no-pod-signals" in args and not can_i(sa, "list", "pods", "-n", watched)
        assert "--no-delete-stuck-pods" in args and not can_i(sa, "delete", "pods", "-n", watched)
        assert f"--checkpoint-secret={release}-autorollback-checkpoint" in args
        assert can_i(sa, "get", f"secrets/{release}-autorollback-checkpoint", "-n", home)  # its own namespace
        assert not can_i(sa, "get", f"secrets/{release}-autorollback-checkpoint", "-n", watched)
        assert not can_i(sa, "create", "secrets", "-n", watched)
    finally:
        kit.helm("uninstall", release, "--namespace", home, check=False)


def test_kinds_deployment_only_grants_and_watches_deployments_only(
    namespace: str, operator_factory, tmp_path: Path
) -> None:
    """kinds: [Deployment]: no RBAC for the other kinds, and an operator run with the chart's flag and
    account leaves an opted-in StatefulSet alone while it rolls a Deployment back, healthy."""
    ns = namespace
    release = f"ar-{ns[-5:]}"
    kit.helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        ns,
        "--set",
        f"watchNamespaces={{{ns}}}",
        "--set",
        "kinds={Deployment}",
    )
    sa_name = f"{release}-autorollback"
    sa = f"system:serviceaccount:{ns}:{sa_name}"
    try:
        assert can_i(sa, "watch", "deployments", "-n", ns) and can_i(sa, "list", "replicasets", "-n", ns)
        for resource in ("statefulsets", "daemonsets", "controllerrevisions"):
            assert not can_i(sa, "list", resource, "-n", ns) and not can_i(sa, "patch", resource, "-n", ns)
        assert not can_i(sa, "delete", "pods", "-n", ns)  # deleteStuckPods is on, but only StatefulSets need it
        args = kit.kubectl_json("-n", ns, "get", "deployment", sa_name)["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
        assert "--kinds=Deployment" in args
        on = {"autorollback.io/enabled": "true"}
        deadline = {"autorollback.io/progress-deadline-seconds": "5"}
        kit.apply(statefulset(ns, {**on, "autorollback.io/mode": "rollback", **deadline}))
        kit.release(ns, "shop", V1, annotations=on)
        op = operator_factory(
            "-n",
            ns,
            config=str(kit.token_kubeconfig(ns, sa_name, tmp_path / "chart-sa.kubeconfig")),
            extra=("--kinds=Deployment", "--watch-stale-seconds=1"),  # the re-list of the health check every second
        )
        kit.wait_for(lambda: kit.is_available(ns, "shop"), 90, "shop on V1")
        kit.wait_for(lambda: rolled_out(ns, "statefulset", V1), 90, "the StatefulSet on V1")
        kit.kubectl("-n", ns, "patch", "statefulset/web", "--type=strategic", "-p", json.dumps(BREAK))
        kit.release(ns, "shop", V2, failure="not-ready", annotations=on)
        kit.wait_for(lambda: kit.event(ns, "shop", "RolledBack"), 90, "the Deployment's rollback")
        time.sleep(8)  # past the StatefulSet's 5 s deadline, several health re-lists
        assert (
            kit.reasons(ns, "web") == [] and kit.image_of(kit.kubectl_json("-n", ns, "get", "statefulset", "web")) == V2
        )
        assert kit.http_get(op.url("/healthz"))[0] == 200
        assert op.metric("autorollback_watch_healthy") == 1
        assert not [line for line in op.lines() if line.get("level") == "error" or "Forbidden" in json.dumps(line)]
    finally:
        kit.helm("uninstall", release, "--namespace", ns, check=False)


def test_deploy_is_generated_from_the_chart(tmp_path: Path) -> None:
    kit.run(str(kit.ROOT / "hack/manifests.sh"), str(tmp_path))
    committed = kit.ROOT / "deploy"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in committed.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(tmp_path, committed, names, shallow=False)
    assert not mismatch and not errors, f"deploy/ is out of date with the chart ({mismatch}): run `make manifests`"
    built = kit.kubectl("kustomize", str(committed)).stdout
    assert "namespace: autorollback" in built and "kind: ClusterRole" in built
