import pytest

from autorollback.config import DRY_RUN, ENABLED, MODE, ROLLBACK, mentioned, parse


@pytest.mark.parametrize(
    ("value", "enabled"), [("true", True), ("TRUE", True), (" True ", True), ("false", False), ("False", False)]
)
def test_enabled_values(value: str, enabled: bool) -> None:
    c = parse({ENABLED: value})
    assert c.enabled is enabled and c.problems == () and c.mode == ROLLBACK


def test_absent_means_not_opted_in() -> None:
    assert parse(None).enabled is False and parse({}).problems == ()
    assert not mentioned({"other.io/x": "1"}) and mentioned({MODE: "dry-run"})


@pytest.mark.parametrize("value", ["yes", "1", "", "on", "treu"])
def test_invalid_enabled_is_not_opted_in_and_reported(value: str) -> None:
    c = parse({ENABLED: value})
    assert c.enabled is False
    (p,) = c.problems
    message = p.message()
    assert p.key == ENABLED and p.value == value
    assert f'{ENABLED}="{value}"' in message and '"true" or "false"' in message and "not opted in" in message


def test_modes() -> None:
    assert parse({ENABLED: "true", MODE: "Dry-Run"}).dry_run
    assert parse({ENABLED: "true", MODE: "rollback"}).mode == ROLLBACK


def test_invalid_mode_is_the_safe_side() -> None:
    c = parse({ENABLED: "true", MODE: "yolo"})
    assert c.enabled and c.mode == DRY_RUN
    (p,) = c.problems
    assert '"rollback" or "dry-run"' in p.message() and "dry-run" in p.consequence


def test_user_values_are_quoted_escaped_and_capped_in_messages() -> None:
    value = 'x\n{"level": "error"}' + "y" * 300_000
    (p,) = parse({ENABLED: value}).problems
    message = p.message()
    assert "\n" not in message and len(message) < 400 and f"({len(value)} characters)" in message
    (p,) = parse({ENABLED: "naïve\u0000"}).problems
    assert "\\u00ef" in p.message() and "\\u0000" in p.message()


def test_label_selectors_as_the_api_takes_them() -> None:
    from autorollback import kube

    assert kube.selector({"matchLabels": {"b": "2", "a": "1"}}) == "a=1,b=2"
    assert (
        kube.selector(
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "zone", "operator": "NotIn", "values": ["x"]},
                    {"key": "team", "operator": "Exists"},
                ],
            }
        )
        == "app=web,tier in (front,edge),!canary,zone notin (x),team"
    )
