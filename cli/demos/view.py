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
        taints = [t.key.rsplit("/", 1)[-1] for t in (node.spec.taints if node.spec else None) or []]
        line.append(f"{node.metadata.name} ")
        line.append(state, style=STATUS_STYLE.get(state, "white"))
        if taints:
            line.append(f" (tainted {','.join(taints)})", style="yellow")
        line.append("   ")
    return line


def live_view(goal: str, elapsed: float, pods: Iterable[Pod], nodes: Iterable[Node]) -> RenderableType:
    header = Text.assemble(("waiting: ", "bold cyan"), goal, (f"   {elapsed:4.0f}s", "dim"))
    return Group(header, nodes_line(nodes), pods_table(pods))
