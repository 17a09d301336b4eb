"""Demo `services`: a web tier calls a backend tier by name; kill backends, scale them, and
watch the traffic follow.

    load pod --web:80--> web pods --backend:80--> backend pods
      name -> ClusterIP: the cluster DNS (dns/), from the Service
      ClusterIP -> a ready pod: every node's service dataplane (proxy/, nftables),
                  from the EndpointSlices the EndpointSlice controller keeps
    pod deleted  -> its endpoint is `terminating` at once: no new connection goes to it;
                    the ReplicaSet's replacement joins the slice when Ready
    scaled up    -> new pods join the slice when Ready: traffic spreads over them

The demo reads the `load` pod's log (what it was answered, five times a second) through the
API server, like `kubelite logs load`.
"""

from __future__ import annotations

import asyncio
import re
import time

from api.apps import Deployment
from api.core import Pod
from cli.demos.stage import Stage
from cli.demos.view import ready

NAME = "services"
SUMMARY = "two tiers that find each other by Service name; kill and scale backends and watch traffic follow"
MANIFEST = "two-tier.yaml"
_ANSWER = re.compile(r"^web (\S+) -> backend (\S+)$")


def _tier(stage: Stage, app: str) -> list[Pod]:
    return [p for p in stage.pods() if (p.metadata.labels or {}).get("app") == app]


def _ready(stage: Stage, app: str, count: int) -> bool:
    pods = _tier(stage, app)
    return len(pods) == count and all(ready(p) for p in pods)


async def _answers(stage: Stage, since: float) -> list[tuple[str, str]]:
    """(web pod, backend pod) of every answer the load pod logged since `since` (a time.time())."""
    seconds = max(1, int(time.time() - since))
    text = await stage.conn.api.request("GET", f"/api/v1/namespaces/{stage.namespace}/pods/load/log",
                                        params={"sinceSeconds": str(seconds)})
    out = []
    for line in str(text or "").splitlines():
        match = _ANSWER.match(line.strip())
        if match:
            out.append((match.group(1), match.group(2)))
    return out


async def _sample(stage: Stage, seconds: float) -> list[tuple[str, str]]:
    start = time.time()
    await asyncio.sleep(seconds)
    return await _answers(stage, start)


def _spread(answers: list[tuple[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _web, backend in answers:
        counts[backend] = counts.get(backend, 0) + 1
    return counts


def _show(stage: Stage, counts: dict[str, int]) -> None:
    total = sum(counts.values()) or 1
    for backend, n in sorted(counts.items()):
        stage.say(f"  {backend}: {n} answers ({100 * n // total}%)")


async def run(stage: Stage) -> None:
    await stage.step("Create two tiers, each a Deployment behind a Service, and a client that calls `web`.")
    stage.say("The API server gives each Service a ClusterIP; the EndpointSlice controller lists the Ready pods "
              "behind it; the cluster DNS answers `web` and `backend` with the ClusterIPs; each node's nftables "
              "rules send every new connection to a ClusterIP to one of those pods.")
    await stage.apply(MANIFEST)
    await stage.wait_for("2 backend and 2 web pods Ready, the client running",
                         lambda: _ready(stage, "backend", 2) and _ready(stage, "web", 2)
                         and bool(_tier(stage, "load")) and ready(_tier(stage, "load")[0]), timeout=120)
    backends = {p.metadata.name or "" for p in _tier(stage, "backend")}
    answers = await _sample(stage, 4)
    counts = _spread(answers)
    stage.say(f"In 4 seconds the client got {len(answers)} answers, which reached the backends as:")
    _show(stage, counts)
    if not stage.check("the web tier reaches the backend tier by name, on both backends", set(counts) == backends):
        return

    victim = sorted(backends)[0]
    await stage.step(f"Delete backend pod {victim}.")
    stage.say("Its endpoint turns `terminating` (not ready) in the EndpointSlice at once, so every node stops "
              "sending it new connections before the kubelet even stops it; the ReplicaSet creates a "
              "replacement, which joins the slice once its readiness probe passes.")
    await stage.conn.api.delete(Pod, victim, namespace=stage.namespace)
    stage.did(f"kubelite delete pod {victim} -n {stage.namespace}")
    await asyncio.sleep(1)
    after = await _sample(stage, 3)
    counts = _spread(after)
    stage.say("Answers in the 3 seconds from one second after the deletion:")
    _show(stage, counts)
    stage.check(f"no answer came from {victim} after its deletion", victim not in counts and bool(counts))

    await stage.step("Scale the backend tier to 4 replicas.")
    await stage.conn.api.update_scale(Deployment, "backend", 4, namespace=stage.namespace)
    stage.did(f"kubelite scale deployment/backend --replicas 4 -n {stage.namespace}")
    await stage.wait_for("4 backend pods Ready", lambda: _ready(stage, "backend", 4), timeout=120)
    await asyncio.sleep(1)
    backends = {p.metadata.name or "" for p in _tier(stage, "backend")}
    counts = _spread(await _sample(stage, 5))
    stage.say("Answers in the next 5 seconds:")
    _show(stage, counts)
    stage.check("traffic spreads over all 4 backends", set(counts) == backends)
