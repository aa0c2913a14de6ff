"""Properties of the pure core for any history, marks, ledger and annotation values (Hypothesis)."""

from hypothesis import HealthCheck, given, settings, strategies as st

from autorollback import config as annotations, decision, history, ledger, times
from autorollback.workloads import base, deployment as deployments
from autorollback.workloads.deployment import DEPLOYMENTS

from factories import deployment, replicaset, rs_name

IMAGES = [f"app:{n}.0.0" for n in range(1, 7)]
TIMES = [f"2026-11-26T{h:02d}:00:00Z" for h in range(8, 14)]
text = st.text(max_size=300)


@st.composite
def histories(draw):
    """A Deployment whose current template is one of its ReplicaSets, with arbitrary marks and ledger."""
    images = draw(st.lists(st.sampled_from(IMAGES), min_size=1, max_size=6, unique=True))
    replicasets = []
    for number, image in enumerate(images, start=1):
        marks = {}
        for key in (history.HEALTHY_AT, history.FAILED_AT):
            if draw(st.booleans()):
                marks[key] = draw(st.sampled_from(TIMES))
        raw = {}
        if draw(st.booleans()):  # a copy of another ReplicaSet's mark, or garbage
            raw[history.HEALTHY_AT] = draw(
                st.one_of(text, st.sampled_from([history.bind(rs_name(i), TIMES[0]) for i in IMAGES]))
            )
        rs = replicaset(number, image, marks, annotations=raw, available=draw(st.integers(0, 3)))
        replicasets.append(rs)
    current = draw(st.sampled_from(images))
    entries = tuple(
        ledger.Entry(
            rs_name(draw(st.sampled_from(images))),
            rs_name(draw(st.sampled_from(images))),
            draw(st.sampled_from(TIMES)),
            draw(st.sampled_from(TIMES)),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    user = draw(
        st.dictionaries(
            st.sampled_from(["autorollback.io/enabled", "autorollback.io/mode", "autorollback.io/git-revert", "team"]),
            text,
        )
    )
    d = deployment(
        current,
        revision=images.index(current) + 1,
        failed=True,
        annotations={**user, "autorollback.io/enabled": "true", ledger.KEY: ledger.dump(entries)},
    )
    return d, replicasets


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.booleans())
def test_the_target_is_never_the_current_template_nor_known_failed(case, dry_run) -> None:
    d, replicasets = case
    config = annotations.parse(
        {**d["metadata"]["annotations"], "autorollback.io/mode": "dry-run" if dry_run else "rollback"}
    )
    out = decision.decide(d, replicasets, config, "2026-11-26T15:00:00Z", workload=DEPLOYMENTS)
    if out.target is not None and out.undo is not None:
        assert not deployments.same_template(out.target.template, d["spec"]["template"])
        assert not out.target.failed
        assert out.target.name != rs_name(d["spec"]["template"]["spec"]["containers"][0]["image"])


@settings(max_examples=300)
@given(histories())
def test_the_patch_keeps_the_users_configuration_and_never_writes_marks(case) -> None:
    d, replicasets = case
    out = decision.decide(
        d, replicasets, annotations.parse(d["metadata"]["annotations"]), "2026-11-26T15:00:00Z", workload=DEPLOYMENTS
    )
    if out.undo is None:
        return
    assert out.undo.content_type == base.JSON_PATCH
    written = out.undo.body[2]["value"]
    for key, value in d["metadata"]["annotations"].items():
        if deployments.is_configuration(key):
            assert written[key] == value
    assert not set(written) & set(history.MARKS)
    assert ledger.find(ledger.parse(written[ledger.KEY]), out.failure.id) is not None  # recorded in the same write


@settings(max_examples=500)
@given(st.dictionaries(st.text(max_size=40), st.text(max_size=2000)))
def test_parsing_never_raises(values) -> None:
    config = annotations.parse(values)
    for p in config.problems:
        assert "\n" not in p.message() and len(p.message()) < 600
    ledger.parse(values.get(ledger.KEY))
    for v in values.values():
        ledger.parse(v)
        times.parse(v)
        history.bound("web-1", v)


def one_short_line(text: str, limit: int) -> bool:
    return len(text) <= limit and text.isprintable()


@settings(max_examples=1000)
@given(st.lists(st.text(max_size=5000), min_size=1, max_size=8), st.text(max_size=20000))
def test_images_and_condition_messages_are_shown_on_one_short_line(images, message) -> None:
    template = {"spec": {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}}
    assert one_short_line(base.images(template), 3 * (base.SHOWN_IMAGE + 40) + 40)  # quoted, capped, counted
    d = deployment("app:2.0.0", revision=2, failed=True)
    c = deployments.condition(d, "Progressing")
    c["message"] = c["message"] + message
    failure = deployments.failure(d)
    assert failure is not None and failure.revision_name in c["message"] and one_short_line(failure.message, 400)
    cause = decision.change_cause(decision.describe(2, template), decision.describe(1, template), failure)
    assert one_short_line(cause, 1500)
