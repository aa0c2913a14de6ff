"""checks.schedule: each check is evaluated once per its interval; the next look is the soonest due."""

from autorollback.checks import bake as b, schedule as s, templates as t

SEL = 'namespace="{{namespace}}",pod=~"{{pods}}"'
CATALOG = t.parse_catalog(
    {
        "fast": {"query": f"max(e{{{SEL}}})", "failIf": "result > 1", "intervalSeconds": 10},
        "slow": {"query": f"max(l{{{SEL}}})", "failIf": "result > 1", "intervalSeconds": 60},
    }
).strict()
FAST, SLOW = t.select({t.CHECKS: "fast,slow"}, CATALOG).checks


def running() -> s.Running:
    return s.Running("web-abc", "uid-1", b.begin((FAST, SLOW)), clock=100.0)


def test_every_check_is_due_at_first_then_each_after_its_interval() -> None:
    r = running()
    assert s.due(r, (FAST, SLOW), 100.0) == [FAST, SLOW]
    assert s.next_in(r, (FAST, SLOW), 100.0, None) == 0.0
    r.evaluated = {"fast": 100.0, "slow": 100.0}
    assert s.due(r, (FAST, SLOW), 109.9) == []
    assert s.next_in(r, (FAST, SLOW), 105.0, None) == 5.0
    assert s.due(r, (FAST, SLOW), 110.0) == [FAST]
    r.evaluated["fast"] = 110.0
    assert s.due(r, (FAST, SLOW), 160.0) == [FAST, SLOW]


def test_the_bake_time_left_can_come_first() -> None:
    r = running()
    r.evaluated = {"fast": 100.0, "slow": 100.0}
    assert s.next_in(r, (FAST, SLOW), 101.0, bake_left=2.5) == 2.5
    assert s.next_in(r, (FAST, SLOW), 101.0, bake_left=None) == 9.0


def test_a_running_bake_is_bound_to_its_replicaset_by_name_and_uid() -> None:
    r = running()
    assert r.of("web-abc", "uid-1")
    assert not r.of("web-abc", "uid-2")  # deleted and created again under the same name
    assert not r.of("web-def", "uid-1")
