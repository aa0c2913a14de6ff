"""Clones live under a per-process random folder; a folder is removed at start only once the
process that made it is gone (its lock is free), never because it has another process's number."""

import os
import subprocess
import sys
from pathlib import Path

from autorollback.gitrevert import worker

MAKE = """
import sys, time
from pathlib import Path
from autorollback.gitrevert import worker
w = worker.Worker(None, worker.Settings(workdir=Path(sys.argv[1]), workers=0))
print(w.workdir, flush=True)
time.sleep(60)
"""


def test_only_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    alive = subprocess.Popen([sys.executable, "-c", MAKE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    dead = subprocess.Popen([sys.executable, "-c", MAKE, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        kept, gone = Path(alive.stdout.readline().strip()), Path(dead.stdout.readline().strip())
        dead.kill()
        dead.wait()
        (gone / "clone").mkdir()
        old = tmp_path / "autorollback-revert-1-abc"  # the previous version's name, long left
        old.mkdir()
        os.utime(old, (0, 0))
        w = worker.Worker(None, worker.Settings(workdir=tmp_path, workers=0))  # type: ignore[arg-type]
        assert kept.exists() and not gone.exists() and not old.exists() and w.workdir.exists()
    finally:
        alive.kill()
        alive.wait()


def test_a_queued_revert_keeps_only_what_it_reads_and_bounded(tmp_path: Path) -> None:
    from autorollback import history
    from autorollback.gitrevert import core

    w = worker.Worker(None, worker.Settings(workdir=tmp_path, workers=0))  # type: ignore[arg-type]  # no API call
    huge = "x" * 200_000
    deployment = {
        "metadata": {
            "name": "shop",
            "namespace": "team-a",
            "uid": "u",
            "annotations": {
                core.ENABLED: "true",
                core.REPO: "https://git.example.com/team-a/shop.git" + huge,
                "other": huge,
            },
            "labels": {"app": huge},
        },
        "spec": {"template": {"spec": {"containers": [{"image": huge}]}}},
    }
    failing = history.Revision(
        2,
        "shop-2",
        {"spec": {"containers": [{"image": "shop:2"}]}},
        {core.PATH: "deploy", "kubectl.kubernetes.io/last-applied-configuration": huge},
    )
    facts = core.RevertFacts(
        namespace="team-a",
        deployment="shop",
        failed_revision=2,
        failed_images="shop:2",
        restored_revision=1,
        restored_images="shop:1",
        reason="r",
        message="m",
        restored_template={"spec": {"containers": []}},
    )
    w.submit(deployment, failing, facts, None, kind="Deployment")
    _, _, job = w.queue.take(0)
    assert len(repr(job)) < 10_000
    assert job.deployment["metadata"]["annotations"][core.REPO] == worker.TOO_LONG  # matches no rule
    assert job.failing.annotations == {core.PATH: "deploy"} and job.images == ("shop:2",)
