"""Prometheus metrics: request counts and latency histograms, in the text format.

Names follow the API server's own (`apiserver_request_total`,
`apiserver_request_duration_seconds`) so dashboards written for Kubernetes read them.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from aiohttp import web

from apiserver.handlers import TARGET

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[str, str, str]  # verb, resource, code


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[Labels, int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.watchers = 0

    def observe(self, verb: str, resource: str, code: int, seconds: float) -> None:
        self.requests[(verb, resource, str(code))] += 1
        if verb != "WATCH":
            self.buckets[(verb, resource)][bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[(verb, resource)] += seconds

    def render(self) -> str:
        lines = ["# HELP apiserver_request_total Counter of apiserver requests by verb, resource and code.",
                 "# TYPE apiserver_request_total counter"]
        for (verb, resource, code), n in sorted(self.requests.items()):
            lines.append(f'apiserver_request_total{{verb="{verb}",resource="{resource}",code="{code}"}} {n}')
        lines += ["# HELP apiserver_request_duration_seconds Response latency by verb and resource.",
                  "# TYPE apiserver_request_duration_seconds histogram"]
        for (verb, resource), counts in sorted(self.buckets.items()):
            cumulative = 0
            labels = f'verb="{verb}",resource="{resource}"'
            for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'apiserver_request_duration_seconds_bucket{{{labels},le="{le}"}} {cumulative}')
            lines.append(f"apiserver_request_duration_seconds_sum{{{labels}}} {self.sums[(verb, resource)]:.6f}")
            lines.append(f"apiserver_request_duration_seconds_count{{{labels}}} {cumulative}")
        lines += ["# HELP apiserver_registered_watchers Number of open watch requests.",
                  "# TYPE apiserver_registered_watchers gauge", f"apiserver_registered_watchers {self.watchers}"]
        return "\n".join(lines) + "\n"


def verb_of(request: web.Request) -> str:
    method = request.method
    if method == "GET":
        if request.query.get("watch", "").lower() in ("true", "1"):
            return "WATCH"
        target = request.get(TARGET)
        return "LIST" if target is not None and target.name is None else "GET"
    return {"POST": "CREATE", "PUT": "UPDATE", "PATCH": "PATCH", "DELETE": "DELETE"}.get(method, method)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(metrics: Metrics) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        code = 500
        watching = request.query.get("watch", "").lower() in ("true", "1")
        if watching:
            metrics.watchers += 1
        try:
            response = await handler(request)
            code = response.status
            return response
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            if watching:
                metrics.watchers -= 1
            target = request.get(TARGET)
            resource = target.resource.plural if target is not None else ""
            if target is not None and target.sub:
                resource += f"/{target.sub}"
            metrics.observe(verb_of(request), resource, code, time.perf_counter() - start)

    return measure
