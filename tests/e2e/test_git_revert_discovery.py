"""Where the source lives, found from Argo CD and Flux objects (their CRDs, from their Go modules,
installed in the local control plane), and never from an object that does not claim the Deployment."""

import json
import uuid
from pathlib import Path

from . import kit
from .gitea import Gitea
from .test_rollback import wait_event

V1, V2 = "registry.example/shop:1.0.0", "registry.example/shop:2.0.0"


def crds() -> Path:
    v = kit._versions()
    folder = (
        kit.cache()
        / "crds"
        / (f"gitops-argocd-{v['ARGOCD_VERSION']}-flux-{v['FLUX_KUSTOMIZE_VERSION']}-{v['FLUX_SOURCE_VERSION']}")
    )
    if not (folder / "applications.yaml").exists():
        raise AssertionError(f"{folder} is missing: run `make tools`")
    return folder


def test_sources_from_argo_cd_and_flux(
    namespace: str, new_namespace, operator_factory, gitea: Gitea, tmp_path: Path
) -> None:
    ns = namespace
    for f in ("applications.yaml", "kustomizations.yaml", "gitrepositories.yaml"):
        kit.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds() / f))
    kit.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/applications.argoproj.io",
        "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        "crd/gitrepositories.source.toolkit.fluxcd.io",
    )
    argocd = new_namespace()
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / gitea.credential_key).write_text(gitea.token)
    repos, clones = {}, {}
    for name in ("argo", "flux", "sneaky", "nocreds", "liar"):
        repos[name] = gitea.create_repo(f"{name}-{uuid.uuid4().hex[:5]}")
        clones[name] = tmp_path / name
        clones[name].mkdir()
        gitea.git(clones[name], "init", "-q", "-b", "main")
        gitea.git(clones[name], "remote", "add", "origin", repos[name])
    app = "shop"
    meta = {
        "argo": {"annotations": {"argocd.argoproj.io/tracking-id": f"{app}:apps/Deployment:{ns}/argo"}},
        "flux": {"labels": {"kustomize.toolkit.fluxcd.io/name": "shop", "kustomize.toolkit.fluxcd.io/namespace": ns}},
        # claims the Application, which does not list it: its source must not be taken from there
        "sneaky": {"annotations": {"argocd.argoproj.io/tracking-id": f"{app}:apps/Deployment:{ns}/argo"}},
        # a repository on a host the operator has no token for
        "nocreds": {
            "annotations": {
                "autorollback.io/git-repo": "http://localhost:9/forgeadmin/x.git",
                "autorollback.io/git-path": "deploy",
            }
        },
        # Flux applies it from the flux repository; its annotations name another one (allowed too)
        "liar": {
            "labels": {"kustomize.toolkit.fluxcd.io/name": "shop", "kustomize.toolkit.fluxcd.io/namespace": ns},
            "annotations": {"autorollback.io/git-repo": repos["liar"], "autorollback.io/git-path": "deploy"},
        },
    }
    kit.apply(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": app, "namespace": argocd},
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                "source": {"repoURL": repos["argo"], "path": "deploy", "targetRevision": "HEAD"},
            },
            "status": {
                "resources": [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": ns, "name": "argo"}]
            },
        }
    )
    kit.apply(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "shop", "namespace": ns},
            "spec": {"url": repos["flux"], "interval": "1m", "ref": {"branch": "main"}},
        }
    )
    kit.apply(
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "shop", "namespace": ns},
            "spec": {
                "interval": "1m",
                "path": "./deploy",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "shop"},
            },
        }
    )
    kit.kubectl(
        "-n",
        ns,
        "patch",
        "kustomization",
        "shop",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {
                "status": {
                    "inventory": {"entries": [{"id": f"{ns}_{d}_apps_Deployment", "v": "v1"} for d in ("flux", "liar")]}
                }
            }
        ),
    )
    operator_factory(
        "-n",
        ns,
        extra=(
            *gitea.revert_args(creds, ns),
            "--git-allowed-repo",
            f"{ns}=http://localhost:9/forgeadmin/*",
            "--argocd-namespace",
            argocd,
            "--flux",
        ),
    )

    def release(name: str, image: str, message: str, failure: str | None = None) -> None:
        m = kit.deployment(
            name,
            image=image,
            failure=failure,
            annotations={
                "autorollback.io/enabled": "true",
                "autorollback.io/git-revert": "true",
                "autorollback.io/git-provider": "gitea",
                **meta[name].get("annotations", {}),
            },
        )
        m["metadata"].update(namespace=ns, labels=meta[name].get("labels", {}))
        (clones[name] / "deploy").mkdir(exist_ok=True)
        (clones[name] / "deploy" / f"{name}.yaml").write_text(json.dumps(m, indent=1) + "\n")
        gitea.git(clones[name], "add", ".")
        gitea.git(clones[name], "commit", "-q", "-m", message)
        gitea.git(clones[name], "push", "-q", "origin", "main")
        kit.apply(m)

    for name in meta:
        release(name, V1, "v1")
    for name in meta:
        kit.wait_for(lambda: kit.is_available(ns, name), 120, f"{name} v1")
        release(name, V2, "release 2.0.0", failure="not-ready")
    argo = wait_event(ns, "RevertProposed", name="argo", timeout=120)
    assert f"source from Argo CD Application {argocd}/{app}" in argo["message"]
    flux = wait_event(ns, "RevertProposed", name="flux", timeout=120)
    assert f"source from Flux Kustomization {ns}/shop" in flux["message"]
    sneaky = wait_event(ns, "RevertNotProposed", name="sneaky", timeout=120)
    assert "does not list this Deployment" in sneaky["message"]
    nocreds = wait_event(ns, "RevertFailed", name="nocreds", timeout=120)
    assert "no credentials entry localhost_9" in nocreds["message"] and "The rollback stands" in nocreds["message"]
    liar = wait_event(ns, "RevertNotProposed", name="liar", timeout=120)["message"]
    assert "(source_disagrees)" in liar and repos["liar"] in liar and repos["flux"] in liar
    assert f"Flux Kustomization {ns}/shop" in liar
    liar_repo = repos["liar"].split("/", 3)[3].removesuffix(".git")
    assert gitea.api("GET", f"/repos/{liar_repo}/pulls?state=all")[1] == []
    for name in ("argo", "flux"):
        owner_repo = repos[name].split("/", 3)[3].removesuffix(".git")
        _, pulls = gitea.api("GET", f"/repos/{owner_repo}/pulls?state=open")
        assert [p["title"] for p in pulls] == ['Revert "release 2.0.0"'], name
