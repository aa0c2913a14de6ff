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


def test_kinds_default_to_every_kind_and_take_any_case() -> None:
    assert parser().parse_args(["run", "-A"]).kinds == ("Deployment", "StatefulSet", "DaemonSet")
    assert parser().parse_args(["run", "-A", "--kinds", "deployment, DaemonSet,Deployment"]).kinds == (
        "Deployment",
        "DaemonSet",
    )
    # given twice: both uses together, not only the last (as -n is repeatable)
    twice = ["run", "-A", "--kinds", "Deployment", "--kinds", "statefulset,Deployment"]
    assert parser().parse_args(twice).kinds == ("Deployment", "StatefulSet")


@pytest.mark.parametrize("text", ["", ",", "Deployment,CronJob", "deployments"])
def test_unknown_or_no_kinds_are_refused_naming_the_choices(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["run", "-A", "--kinds", text])
    assert e.value.code == 2
    assert "write one or more of Deployment,StatefulSet,DaemonSet" in capsys.readouterr().err
