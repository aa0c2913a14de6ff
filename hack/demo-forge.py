#!/usr/bin/env python3
"""For `make demo`, a local Gitea (built by hack/build-tools.sh).

demo-forge.py up STATE: start it with an empty repository `shop`; print shell assignments
    (GITEA_URL, REPO, CREDENTIALS, TOKEN_FILE, ALLOWED_REPOS, GITEA_PID).
demo-forge.py pulls GITEA_URL TOKEN_FILE TITLE: print the open pull requests; exit 1 unless one has TITLE.
"""

import json
import os
import shlex
import sys
import urllib.request
from pathlib import Path

if sys.argv[1] == "up":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    os.environ.setdefault("KUBECONFIG", str(Path(__file__).resolve().parents[1] / ".cluster/kubeconfig"))
    from e2e.gitea import Gitea

    state = Path(sys.argv[2])
    gitea = Gitea(state / "gitea")
    repo = gitea.create_repo("shop")
    credentials = state / "credentials"
    credentials.mkdir(parents=True, exist_ok=True)
    (credentials / gitea.credential_key).write_text(gitea.token)  # HOST_PORT: the URL has a port
    for name, value in (
        ("GITEA_URL", gitea.url),
        ("REPO", repo),
        ("CREDENTIALS", credentials),
        ("TOKEN_FILE", credentials / gitea.credential_key),
        ("ALLOWED_REPOS", gitea.rule("*").split("=", 1)[1]),  # the repositories the demo's rule allows
        ("GITEA_PID", gitea.proc.pid),
    ):
        print(f"{name}={shlex.quote(str(value))}")
elif sys.argv[1] == "pulls":
    url, token, title = sys.argv[2], Path(sys.argv[3]).read_text().strip(), sys.argv[4]
    req = urllib.request.Request(
        f"{url}/api/v1/repos/forgeadmin/shop/pulls?state=open", headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        pulls = json.load(r)
    for p in pulls:
        print(f"#{p['number']} {p['title']}  ({p['head']['ref']} -> {p['base']['ref']})  {p['html_url']}\n")
        print(p["body"])
    sys.exit(0 if any(p["title"] == title for p in pulls) else 1)
