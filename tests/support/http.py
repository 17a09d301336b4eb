"""A tiny raw HTTP helper for asserting exact API server behaviour (codes, headers, bodies)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp


class Http:
    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession()
        self.last_headers: Any = None

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                   params: dict[str, str] | None = None, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = {"Content-Type": content_type, **(headers or {})} if data is not None else dict(headers or {})
        async with self.session.request(method, self.base + path, data=data, params=params, headers=hdrs) as r:
            self.last_headers = r.headers
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.call("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.call("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, kind: str = "merge", **kw: Any) -> tuple[int, Any]:
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[kind]
        return await self.call("PATCH", path, body, content_type=ctype, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.call("DELETE", path, body, **kw)


def pod(name: str, *, labels: dict[str, str] | None = None, image: str = "busybox", node: str | None = None,
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                            "spec": {"containers": [{"name": "main", "image": image}], **spec}}
    if labels:
        body["metadata"]["labels"] = labels
    if node:
        body["spec"]["nodeName"] = node
    return body


def deployment(name: str, *, replicas: int = 2, image: str = "busybox:1.36") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}}
