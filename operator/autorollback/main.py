"""The `autorollback` command. `status` needs only what the CLI is installed with (`pip install
autorollback`); anything else runs the operator, whose dependencies are the `operator` extra: without
them it says so in one line instead of a traceback."""

import importlib.util
import sys

from autorollback import __version__

# the operator's imports (the `operator` extra of pyproject.toml), by module name
OPERATOR_MODULES = ("kopf", "prometheus_client", "structlog", "promql_parser", "github", "gitlab")
EXTRA = "pip install 'autorollback[operator]'"
USAGE = f"""usage: autorollback {{status,run}} ...

  status  show what autorollback protects and what it decided (autorollback status -h)
  run     run the operator (its dependencies are not installed: {EXTRA})
"""


def missing() -> list[str]:
    return [m for m in OPERATOR_MODULES if importlib.util.find_spec(m) is None]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:
        from autorollback.status import shell

        return shell.main(argv[1:])
    if argv == ["--version"]:
        print(f"autorollback {__version__}")
        return 0
    absent = missing()
    if absent and argv[:1] in ([], ["-h"], ["--help"]):  # usage, not the install error
        print(USAGE, end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if absent:
        print(
            f"autorollback: error: the operator's dependencies are not installed ({', '.join(absent)}): {EXTRA} "
            "(`autorollback status` works without them)",
            file=sys.stderr,
        )
        return 2
    from autorollback import cli

    return cli.main(argv)
