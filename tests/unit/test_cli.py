import pytest

from autorollback import __version__
from autorollback.cli import parser


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"autorollback {__version__}"


def test_defaults() -> None:
    args = parser().parse_args(["run", "-A"])
    assert (args.all_namespaces, args.metrics_port, args.health_port, args.log_level) == (True, 9090, 8080, "INFO")
    assert args.log_format is None  # decided at run time: json unless stdout is a terminal


def test_namespaces_repeat() -> None:
    args = parser().parse_args(
        ["run", "-n", "a", "--namespace", "b", "--log-format", "console", "--log-level", "debug"]
    )
    assert args.namespaces == ["a", "b"] and args.log_format == "console" and args.log_level == "DEBUG"


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],  # a scope is required
        ["run", "-A", "-n", "a"],  # not both
        ["run", "-n", "team-*"],  # no patterns
        ["run", "-A", "--metrics-port", "70000"],
        ["run", "-A", "--log-format", "xml"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parser().parse_args(argv)
    assert e.value.code == 2
