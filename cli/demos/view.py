"""The live view of a demo: what the pods and nodes look like right now, as rich tables.

The rows come from the same functions that render `kubectl get pods` on the server
(apiserver/tables.py), so the STATUS a demo shows (`CrashLoopBackOff`, `OOMKilled`,
`Terminating`, ...) is exactly what `kubectl get pods` would print at that moment.
The small predicates below (`ready`, `restarts`, ...) are what the demos' checks read.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from api.core import ContainerStatus, Node, Pod
from apiserver.tables import table

POD_COLUMNS = ("Name", "Ready", "Status", "Restarts", "Node", "IP", "Age")
STATUS_STYLE = {"Running": "green", "Terminating": "yellow", "Pending": "yellow", "ContainerCreating": "yellow",
                "CrashLoopBackOff": "red", "OOMKilled": "red", "Error": "red", "Failed": "red", "NotReady": "red",
                "Unknown": "red", "Ready": "green"}


# ------------------------------------------------------------------ pod facts


def terminating(pod: Pod) -> bool:
    return pod.metadata.deletion_timestamp is not None


def ready(pod: Pod) -> bool:
    """The pod's Ready condition: every container runs and passes its readiness probe."""
    cond = pod.status.condition("Ready") if pod.status else None
    return cond is not None and cond.status == "True"


def main_container(pod: Pod) -> ContainerStatus | None:
    statuses = (pod.status.container_statuses if pod.status else None) or []
    return statuses[0] if statuses else None


def restarts(pod: Pod) -> int:
    return sum(cs.restart_count for cs in (pod.status.container_statuses if pod.status else None) or [])


def node_of(pod: Pod) -> str:
    return pod.spec.node_name or ""


def node_ready(node: Node) -> bool:
    cond = node.status.condition("Ready") if node.status else None
    return cond is not None and cond.status == "True"


def taints(node: Node) -> str:
    """`tainted unreachable:NoSchedule,NoExecute`, or "" for an untainted node."""
    effects: dict[str, list[str]] = {}
    for t in (node.spec.taints if node.spec else None) or []:
        effects.setdefault(t.key.rsplit("/", 1)[-1], []).append(t.effect or "")
    return " ".join(f"tainted {key}:{','.join(e)}" for key, e in effects.items())


def pod_status(pod: Pod) -> str:
    """kubectl's STATUS column for one pod."""
    return str(table("pods", [pod.to_dict()])["rows"][0]["cells"][2])


# ------------------------------------------------------------------ rendering


def pods_table(pods: Iterable[Pod]) -> Table:
    objects = [p.to_dict() for p in sorted(pods, key=lambda p: p.metadata.name or "")]
    rendered = table("pods", objects)
    index = {c["name"]: i for i, c in enumerate(rendered["columnDefinitions"])}
    out = Table(box=None, header_style="bold", pad_edge=False)
    for name in POD_COLUMNS:
        out.add_column(name.upper(), no_wrap=True)
    for row in rendered["rows"]:
        cells = [str(row["cells"][index[name]]) for name in POD_COLUMNS]
        cells[2] = f"[{STATUS_STYLE.get(cells[2], 'white')}]{cells[2]}[/]"
        out.add_row(*cells)
    if not rendered["rows"]:
        out.add_row("[dim](no pods)[/]", *[""] * (len(POD_COLUMNS) - 1))
    return out


def nodes_line(nodes: Iterable[Node]) -> Text:
    """One line for the nodes: `nodes: n1 Ready  n2 NotReady (unreachable)`."""
    line = Text("nodes: ", style="bold")
    for node in sorted(nodes, key=lambda n: n.metadata.name or ""):
        cond = node.status.condition("Ready") if node.status else None
        state = "Ready" if cond and cond.status == "True" else "NotReady" if cond else "Unknown"
        line.append(f"{node.metadata.name} ")
        line.append(state, style=STATUS_STYLE.get(state, "white"))
        if taints(node):
            line.append(f" ({taints(node)})", style="yellow")
        line.append("   ")
    return line


def live_view(goal: str, elapsed: float, pods: Iterable[Pod], nodes: Iterable[Node]) -> RenderableType:
    header = Text.assemble(("waiting: ", "bold cyan"), goal, (f"   {elapsed:4.0f}s", "dim"))
    return Group(header, nodes_line(nodes), pods_table(pods))


# ------------------------------------------------------------------ the change log


def pod_facts(pod: Pod) -> dict[str, str]:
    """What the change log compares between two versions of a pod."""
    cells = table("pods", [pod.to_dict()])["rows"][0]["cells"]
    return {"status": str(cells[2]), "ready": str(cells[1]), "restarts": str(cells[3]),
            "node": pod.spec.node_name or ""}


def pod_change(old: Pod | None, new: Pod | None) -> str | None:
    """One line saying what changed in a pod (None if nothing the table shows did):
    `web-1  status Pending -> Running, ready 0/1 -> 1/1`."""
    if new is None:
        return f"{old.metadata.name if old else '?'}  deleted" if old else None
    facts = pod_facts(new)
    if old is None:
        where = f" on {facts['node']}" if facts["node"] else ""
        return f"{new.metadata.name}  created ({facts['status']}{where})"
    before = pod_facts(old)
    changes = [f"scheduled to {facts['node']}" if key == "node" else f"{key} {before[key]} -> {facts[key]}"
               for key in facts if facts[key] != before[key]]
    return f"{new.metadata.name}  {', '.join(changes)}" if changes else None


def node_change(old: Node | None, new: Node | None) -> str | None:
    """`node n1  Ready -> NotReady, tainted unreachable:NoSchedule,NoExecute`."""
    if old is None or new is None:
        return None
    changes = []
    if node_ready(old) != node_ready(new):
        changes.append("NotReady -> Ready" if node_ready(new) else "Ready -> NotReady")
    if taints(old) != taints(new):
        changes.append(taints(new) or "taints removed")
    return f"node {new.metadata.name}  {', '.join(changes)}" if changes else None
