import dataclasses

import pytest

from autorollback.gitrevert import core

REPO = "https://git.example.com/team/shop.git"
FACTS = core.RevertFacts(
    namespace="prod",
    deployment="shop",
    failed_revision=5,
    failed_images="shop:2.0.0",
    restored_revision=4,
    restored_images="shop:1.0.0",
    reason="ProgressDeadlineExceeded",
    message='ReplicaSet "shop-5d8f" has timed out progressing.',
)


def ann(**kw: str) -> dict[str, str]:
    return {core.REPO: REPO, core.PATH: "deploy/shop.yaml", core.PROVIDER: "gitea", **kw}


def test_source_from_annotations_the_failed_replicasets_copy_first() -> None:
    src = core.source(ann(), {core.COMMIT: "ABCDEF1234567"})
    assert src == core.Source(REPO, "deploy/shop.yaml", "", "abcdef1234567", "gitea", "annotations")
    assert src.host == "git.example.com" and src.owner_and_name == ("team", "shop")


@pytest.mark.parametrize(
    ("annotations", "why"),
    [
        ({}, "no autorollback.io/git-repo"),
        (ann(**{core.REPO: "https://user:secret@git.example.com/a/b.git"}), "must not carry credentials"),
        (ann(**{core.REPO: "git@github.com:a/b.git"}), "not an HTTPS clone URL"),
        (ann(**{core.PATH: "../etc"}), "must name the manifest"),
        (ann(**{core.COMMIT: "HEAD~1"}), "is not a commit SHA"),
        (ann(**{core.PROVIDER: ""}), "cannot tell which forge"),
    ],
)
def test_unusable_sources_say_why(annotations, why: str) -> None:
    out = core.source(annotations, {})
    assert isinstance(out, str) and why in out
    assert "secret" not in out


def test_forge_from_the_host() -> None:
    src = core.source({core.REPO: "https://github.com/a/b.git", core.PATH: "k8s"}, {})
    assert src.provider == "github"


def test_branch_message_and_body() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert core.branch_name(sha, "main") == "autorollback/revert-0123456789ab-onto-main"
    assert core.branch_name(sha, "release/1.x") != core.branch_name(sha, "release-1.x")  # two bases, two branches
    assert core.branch_name(sha, "release/1.x").startswith("autorollback/revert-0123456789ab-onto-release-1.x-")
    msg = core.commit_message("release shop 2.0.0", sha, FACTS)
    assert msg.startswith('Revert "release shop 2.0.0"\n\nThis reverts commit ' + sha + ".\n")
    body = core.body(sha, FACTS, "annotations")
    assert "shop:2.0.0" in body and "shop:1.0.0" in body and "never merges" in body
    assert "rolled Deployment prod/shop back" in msg and "rolled Deployment **prod/shop** back" in body


def test_message_and_body_name_the_workloads_kind() -> None:
    facts = dataclasses.replace(FACTS, kind="StatefulSet")
    assert "autorollback rolled StatefulSet prod/shop back" in core.commit_message("v2", "0" * 40, facts)
    assert "autorollback rolled StatefulSet **prod/shop** back" in core.body("0" * 40, facts, "annotations")


def test_introduces_looks_at_added_lines_only() -> None:
    diff = "--- a/x\n+++ b/x\n-        image: shop:1.0.0\n+        image: shop:2.0.0\n"
    assert core.introduces(diff, "shop:2.0.0") and not core.introduces(diff, "shop:1.0.0")


def test_only_whole_image_names_count() -> None:
    assert core.names('        "image": "registry.example/shop:1.2"', "registry.example/shop:1.2")
    assert not core.names('        "image": "registry.example/shop:1.20"', "registry.example/shop:1.2")
    assert not core.names("image: other.example/registry.example/shop:1.2", "registry.example/shop:1.2")
    assert core.names("- image: shop:1.2 # pinned", "shop:1.2")


def test_the_images_a_release_changed() -> None:
    def tpl(*images: str, init: str | None = None) -> dict:
        spec = {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}
        if init:
            spec["initContainers"] = [{"name": "init", "image": init}]
        return {"spec": spec}

    assert core.changed_images(tpl("shop:2", "proxy:1"), tpl("shop:1", "proxy:1")) == ["shop:2"]
    assert core.changed_images(tpl("shop:1", "proxy:2"), tpl("shop:1", "proxy:1")) == ["proxy:2"]  # a sidecar
    assert core.changed_images(tpl("shop:1", init="migrate:2"), tpl("shop:1", init="migrate:1")) == ["migrate:2"]
    assert core.changed_images(tpl("shop:1"), tpl("shop:1")) == []  # env, probes...: not found by image


def test_plain_http_only_on_this_machine() -> None:
    assert isinstance(core.source(ann(**{core.REPO: "http://git.example.com/a/b.git"}), {}), str)
    assert not isinstance(core.source(ann(**{core.REPO: "http://127.0.0.1:3000/a/b.git"}), {}), str)
