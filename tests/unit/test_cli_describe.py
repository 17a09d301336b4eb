"""`describe` text for a running pod: kubectl's sections, aligned block by block."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from api import resources
from cli.describe import describe
from cli.printers import TabWriter

POD = {
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"},
                 "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}]},
    "spec": {"nodeName": "n1", "containers": [{"name": "web", "image": "busybox",
                                               "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
    "status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.244.1.5",
               "containerStatuses": [{"name": "web", "ready": True, "restartCount": 2,
                                      "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}],
               "conditions": [{"type": "Ready", "status": "True"}]},
}
EVENT = {"type": "Warning", "reason": "BackOff", "message": "restarting", "count": 3,
         "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:09:00Z",
         "source": {"component": "kubelet", "host": "n1"}}


def _render(lines: list[str]) -> list[str]:
    out = io.StringIO()
    w = TabWriter(out, minwidth=0, padding=2)
    for line in lines:
        w.write(line + "\n")
    w.flush()
    return out.getvalue().splitlines()


def test_pod_sections() -> None:
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    text = _render(describe(resources.PODS, POD, [EVENT], now=now))
    assert text[:2] == ["Name:             web", "Namespace:        default"]
    assert "Node:             n1/10.0.0.1" in text
    assert text[text.index("Labels:           app=web") + 1] == "                  tier=front"
    assert "Controlled By:    ReplicaSet/web-abc" in text
    assert "    State:          Running" in text and "    Restart Count:  2" in text
    assert text[-3:] == ["  Type     Reason   Age                From         Message",
                         "  ----     ------   ----               ----         -------",
                         "  Warning  BackOff  60s (x3 over 10m)  kubelet, n1  restarting"]
