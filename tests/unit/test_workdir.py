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
worker.configure(worker.Settings(workdir=Path(sys.argv[1]), workers=0))
print(worker._workdir, flush=True)
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
        worker.configure(worker.Settings(workdir=tmp_path, workers=0))
        assert kept.exists() and not gone.exists() and not old.exists() and worker._workdir.exists()
    finally:
        alive.kill()
        alive.wait()
