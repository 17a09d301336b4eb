"""Output as kubectl prints it: aligned tables from server-side Tables, YAML, JSON, names.

Tables go through `TabWriter`, a port of the Go tabwriter kubectl uses (elastic
tabstops): a cell is text ended by a tab, a column's width is its widest cell plus the
padding (at least `minwidth`), the last cell of a line is never padded, and a line
without tabs ends every column block. `get` uses kubectl's settings (minwidth 6,
padding 3) and `remember_widths`, so the rows a watch prints later never pull columns
narrower than those already on the screen. `describe` uses minwidth 0, padding 2.

The table helpers take the server's Table (columnDefinitions + rows with cells and the
object's metadata) and only choose columns (`priority` 1 is `-o wide`), add NAMESPACE
(`-A`) or LABELS (`--show-labels`), and prefix names with their kind (`get all`): the
columns themselves are the server's, as kubectl's are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import yaml

from api.resources import Resource

__all__ = [
    "TabWriter",
    "TableOptions",
    "dump_json",
    "dump_yaml",
    "format_labels",
    "kind_name",
    "table_lines",
]


class TabWriter:
    """Go's text/tabwriter (left-aligned, space-padded), with kubectl's RememberWidths."""

    def __init__(self, out: TextIO, *, minwidth: int = 0, padding: int = 2, remember_widths: bool = False) -> None:
        self.out = out
        self.minwidth = minwidth
        self.padding = padding
        self.remember_widths = remember_widths
        self._remembered: list[int] = []
        self._buffer: list[str] = []

    def write(self, text: str) -> None:
        """Buffer text; cells end with tabs, lines with newlines; nothing is printed before flush."""
        self._buffer.append(text)

    def line(self, *cells: object) -> None:
        self.write("\t".join(str(c) for c in cells) + "\n")

    def flush(self) -> None:
        text = "".join(self._buffer)
        self._buffer = []
        if not text:
            return
        lines = [line.split("\t") for line in text.removesuffix("\n").split("\n")]
        out: list[str] = []
        self._format(lines, 0, len(lines), [], out)
        if not text.endswith("\n"):
            out[-1] = ""  # the last line had no newline: do not add one
        self.out.write("".join(out))
        self.out.flush()

    def _format(self, lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            # A cell in this column: print the lines before the block, then size the block.
            self._write_lines(lines, line0, this, widths, out)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            if self.remember_widths:
                while len(self._remembered) <= column:
                    self._remembered.append(0)
                width = max(width, self._remembered[column])
                self._remembered[column] = width
            self._format(lines, line0, this, [*widths, width], out)
            line0 = this
        self._write_lines(lines, line0, line1, widths, out)

    @staticmethod
    def _write_lines(lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]) -> None:
        for cells in lines[line0:line1]:
            for j, cell in enumerate(cells):
                out.append(cell.ljust(widths[j]) if j < len(widths) else cell)
            out.append("\n")


@dataclass(slots=True)
class TableOptions:
    wide: bool = False
    with_namespace: bool = False
    show_labels: bool = False
    no_headers: bool = False
    # `get all` and `get pod/a deploy/b`: names printed as `pod/web`, `deployment.apps/web`.
    kind_prefix: str | None = None
    label_columns: list[str] = field(default_factory=list)


def _cell(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def format_labels(labels: dict[str, str] | None) -> str:
    """kubectl's `labels.FormatLabels`: sorted `k=v` joined by commas, `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def table_lines(table: dict[str, Any], options: TableOptions, *, header: bool = True) -> list[list[str]]:
    """Header (uppercased) and row cells of a server Table, as kubectl would print them."""
    columns = table.get("columnDefinitions") or []
    keep = [i for i, c in enumerate(columns) if options.wide or int(c.get("priority") or 0) == 0]
    name_index = next((i for i, c in enumerate(columns) if c.get("format") == "name"), None)
    out: list[list[str]] = []
    if header and not options.no_headers:
        head = [str(columns[i].get("name", "")).upper() for i in keep]
        head += [key.upper().rsplit("/", 1)[-1] for key in options.label_columns]
        if options.show_labels:
            head.append("LABELS")
        if options.with_namespace:
            head.insert(0, "NAMESPACE")
        out.append(head)
    for row in table.get("rows") or []:
        cells = row.get("cells") or []
        meta = (row.get("object") or {}).get("metadata") or {}
        labels = meta.get("labels") or {}
        line = []
        for i in keep:
            text = _cell(cells[i] if i < len(cells) else None)
            if i == name_index and options.kind_prefix:
                text = f"{options.kind_prefix}/{text}"
            line.append(text)
        line += [str(labels.get(key, "")) for key in options.label_columns]
        if options.show_labels:
            line.append(format_labels(labels))
        if options.with_namespace:
            line.insert(0, str(meta.get("namespace") or ""))
        out.append(line)
    return out


def write_rows(writer: TabWriter, rows: Iterable[Sequence[str]]) -> None:
    for row in rows:
        writer.line(*row)


def kind_name(resource: Resource) -> str:
    """`pod`, `deployment.apps`: the prefix kubectl prints before `/<name>`."""
    return f"{resource.singular}.{resource.group}" if resource.group else resource.singular


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """What kubectl shows for `-o yaml|json`: the object without managedFields."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def as_list(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """kubectl's wrapper for several objects in `-o yaml|json`."""
    return {"apiVersion": "v1", "items": [clean(o) for o in objects], "kind": "List",
            "metadata": {"resourceVersion": ""}}


class _Dumper(yaml.SafeDumper):
    """Block style, and multi-line strings as `|` blocks, like Go's yaml (sigs.k8s.io/yaml)."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    # A string that would read back as something else ("7", "true", a timestamp) is
    # double-quoted, as Go's yaml does, rather than PyYAML's single quotes.
    if value and dumper.resolve(yaml.ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str":
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(obj: Any) -> str:
    """Sorted keys, block style, no line wrapping: what `kubectl -o yaml` prints."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True,
                     width=1 << 20)


def dump_json(obj: Any) -> str:
    """Sorted keys and four-space indents: what `kubectl -o json` prints."""
    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def error_text(err: BaseException, *, server: str | None = None, origin: str | None = None,
               source: str | None = None, action: str | None = None) -> str:
    """One error the way kubectl words it (without the trailing newline).

    `action`/`source` say what a file-driven verb was doing: `error when creating "web.yaml"`;
    `origin` says where the server address came from (`--server`, `kubeconfig /path`, ...).
    """
    from api.client import ApiConnectionError, ApiTimeout
    from api.errors import ApiError

    if isinstance(err, ApiError):
        message = err.message
        if err.reason == "Invalid" and not source and " is invalid" in message:
            return f"The {message}"  # kubectl: The Pod "web" is invalid: ...
        context = f'error when {action} "{source}": ' if action and source else ""
        return f"Error from server ({err.reason}): {context}{message}"
    if isinstance(err, ApiConnectionError):
        where = server or err.server
        came = f" (that address came from {origin})" if origin else ""
        return (f"error: {err}\nIs the API server at {where}{came} running? Point kubelite at another one with "
                f"--server URL, $KUBELITE_SERVER or --kubeconfig FILE, or start one with `kubelite server`.")
    if isinstance(err, ApiTimeout):
        return f"error: {err} (raise --request-timeout if the server is just slow)"
    return f"error: {err}"
