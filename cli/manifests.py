"""Reading `-f FILE|DIR|-`: multi-document YAML or JSON, List kinds expanded, empty documents skipped.

Every object comes back as a `Manifest` that remembers where it was read from (file and
1-based document index), so that an error days later can still say `web.yaml (document 3)`.
A directory contributes its `.yaml`, `.yml` and `.json` files in name order (with
`recursive`, its subdirectories too), like kubectl. Everything is read and checked before
anything is sent, so a typo in the third document does not leave the first two applied.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from api import resources
from api.resources import Resource

__all__ = ["Manifest", "ManifestError", "load"]

EXTENSIONS = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A manifest cannot be read or is not a Kubernetes object kubelite serves."""


@dataclass(slots=True)
class Manifest:
    obj: dict[str, Any]
    source: str  # the file name as the user gave it, or "STDIN"
    index: int  # 1-based document number within the source
    resource: Resource

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str | None:
        ns = (self.obj.get("metadata") or {}).get("namespace")
        return str(ns) if ns else None

    def where(self) -> str:
        return f"{self.source} (document {self.index})"


def load(paths: Iterable[str], *, recursive: bool = False, stdin: TextIO | None = None) -> list[Manifest]:
    out: list[Manifest] = []
    for path in paths:
        for source, text in _sources(path, recursive=recursive, stdin=stdin):
            out.extend(parse(text, source))
    return out


def _sources(path: str, *, recursive: bool, stdin: TextIO | None) -> list[tuple[str, str]]:
    if path == "-":
        return [("STDIN", (stdin or sys.stdin).read())]
    p = Path(path)
    if p.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix in EXTENSIONS)
        if not files:
            raise ManifestError(f'error reading "{path}": no .yaml, .yml or .json files in the directory')
        return [(str(f), _read(f, str(f))) for f in files]
    return [(path, _read(p, path))]


def _read(p: Path, shown: str) -> str:
    try:
        return p.read_text()
    except FileNotFoundError as err:
        raise ManifestError(f'the path "{shown}" does not exist') from err
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f'error reading "{shown}": {err}') from err


def parse(text: str, source: str) -> list[Manifest]:
    """The objects in one file's text, Lists expanded, each checked for kind and apiVersion."""
    try:
        if text.lstrip().startswith(("{", "[")):
            docs: list[Any] = [json.loads(text)]
        else:
            docs = list(yaml.safe_load_all(text))
    except (ValueError, yaml.YAMLError) as err:
        raise ManifestError(f"error parsing {source}: {_yaml_error(err)}") from err
    out: list[Manifest] = []
    for index, doc in enumerate(docs, start=1):
        if doc is None or doc == {}:
            continue  # `---` separators around nothing, as kubectl skips them
        where = f"{source} (document {index})"
        if not isinstance(doc, dict):
            raise ManifestError(f"error parsing {where}: want an object with apiVersion and kind, "
                                f"got {type(doc).__name__}")
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                if not isinstance(item, dict):
                    raise ManifestError(f"error parsing {where}: a List item is not an object")
                out.append(_manifest(item, source, index))
        else:
            out.append(_manifest(doc, source, index))
    return out


def _manifest(obj: dict[str, Any], source: str, index: int) -> Manifest:
    where = f"{source} (document {index})"
    missing = [f for f in ("apiVersion", "kind") if not obj.get(f)]
    if missing:
        raise ManifestError(f"error validating {where}: [{', '.join(f'{f} not set' for f in missing)}]")
    kind, api_version = str(obj["kind"]), str(obj["apiVersion"])
    resource = resources.BY_KIND.get(kind)
    if resource is None or resource.api_version != api_version:
        raise ManifestError(f'resource mapping not found for name: "{_name(obj)}" from {where}: '
                            f'no matches for kind "{kind}" in version "{api_version}"')
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        raise ManifestError(f"error validating {where}: metadata.name not set")
    return Manifest(obj, source, index, resource)


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def _yaml_error(err: Exception) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(err)
