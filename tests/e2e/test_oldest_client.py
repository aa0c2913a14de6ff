"""The operator installed with the oldest `kubernetes` client pyproject.toml allows.

A client model knows only the fields of its own Kubernetes version. The rollback writes a pod
template back, so it must write exactly what the API server sent: pod-level `resources` (on by
default in Kubernetes 1.34) is unknown to client 31, and a template written through its models
would lose it, and make the controller create a new ReplicaSet instead of reusing the good one.
"""

import subprocess

from . import kit
from .test_rollback import ON, V1, V2, available

PYTHON = kit.ROOT / ".venv-oldest/bin/python"
POD_RESOURCES = {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}


def release(ns: str, image: str, failure: str | None = None) -> None:
    m = kit.deployment("web", image=image, failure=failure, annotations=ON)
    m["metadata"]["namespace"] = ns
    m["spec"]["template"]["spec"]["resources"] = POD_RESOURCES
    kit.apply(m)


def test_the_oldest_client_rolls_back_to_the_template_it_read(namespace: str, operator_factory) -> None:
    assert PYTHON.exists(), f"{PYTHON} is missing: `make venv` installs it"
    version = subprocess.run(
        [str(PYTHON), "-c", "import kubernetes; print(kubernetes.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version.startswith("31."), version
    ns = namespace
    op = operator_factory("-n", ns, python=str(PYTHON))
    release(ns, V1)
    available(ns, V1, 1)
    good = next(rs for rs in kit.replicasets(ns, "web") if kit.revision(rs) == 1)
    assert good["spec"]["template"]["spec"]["resources"] == POD_RESOURCES  # the API server keeps the field
    release(ns, V2, failure="not-ready")
    d = available(ns, V1, 3)

    after = kit.replicasets(ns, "web")
    assert len(after) == 2  # no third ReplicaSet: the known-good one was reused ...
    reused = next(rs for rs in after if kit.revision(rs) == 3)
    assert reused["metadata"]["name"] == good["metadata"]["name"]  # ... under its own name
    assert d["spec"]["template"]["spec"]["resources"] == POD_RESOURCES
    written = dict(
        good["spec"]["template"],
        metadata={
            **good["spec"]["template"]["metadata"],
            "labels": {
                k: v for k, v in good["spec"]["template"]["metadata"]["labels"].items() if k != "pod-template-hash"
            },
        },
    )
    assert d["spec"]["template"] == written  # byte for byte what the API server sent for revision 1
    assert [line["result"] for line in op.lines() if line.get("event") == "rollback decision"] == ["success"]
