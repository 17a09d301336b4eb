"""Registry mirrors, in the manner of containerd's `hosts.toml`: try the mirrors, then upstream.

A mirror serves the same repositories as the registry it stands in for, under the same
paths: a mirror of docker.io answers `GET /v2/library/busybox/manifests/latest` for the
reference `busybox`. A pull tries each mirror of the reference's registry in the order given
and falls through to the next host on any failure (unreachable, 404, bad content), ending
with the upstream registry itself, as containerd does. What a pull stores locally is named
exactly as the user wrote it, whichever host served it, so `busybox` stays `busybox:latest`.

    docker.io=http://198.51.100.1:5000       one `--registry-mirror` setting
    Mirrors.parse([...]).endpoints(ref)      -> ("http://198.51.100.1:5000",) for `busybox`

The registry name of a reference with no domain is docker.io, as in Docker. The mirror URL
names its scheme: a cluster registry on a private address usually speaks plain http.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from runtime.images.errors import ImageError
from runtime.images.reference import DOCKER_HUB, Reference, parse_reference


class MirrorError(ImageError):
    """A mirror setting that is not `REGISTRY=http[s]://HOST[:PORT]`."""


def registry_name(ref: Reference) -> str:
    """The registry a reference belongs to, as mirror settings name it (docker.io when none is given)."""
    return ref.domain or DOCKER_HUB


def parse_endpoint(url: str) -> str:
    """Normalise a mirror URL to `scheme://host[:port]`; raise MirrorError when it is not one."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MirrorError(f"mirror {url!r} must be an http:// or https:// URL, e.g. http://198.51.100.1:5000")
    if parts.path.strip("/") not in ("", "v2") or parts.query or parts.fragment:
        raise MirrorError(f"mirror {url!r} must name a host (and port) only, no path")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Mirrors:
    """Registry name -> mirror URLs, tried in order before the registry itself."""

    hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, settings: Iterable[str]) -> Mirrors:
        """From `REGISTRY=URL` strings (the agent's `--registry-mirror`); repeats add mirrors in order."""
        hosts: dict[str, tuple[str, ...]] = {}
        for setting in settings:
            name, eq, url = setting.partition("=")
            name = name.strip()
            if not eq or not name:
                raise MirrorError(f"registry mirror {setting!r} must be REGISTRY=URL, "
                                  "e.g. docker.io=http://198.51.100.1:5000")
            hosts[name] = (*hosts.get(name, ()), parse_endpoint(url))
        return cls(hosts)

    def endpoints(self, ref: Reference | str) -> tuple[str, ...]:
        """Mirror URLs to try for `ref`, in order; empty when its registry has none."""
        parsed = ref if isinstance(ref, Reference) else parse_reference(ref)
        return tuple(self.hosts.get(registry_name(parsed), ()))

    def settings(self) -> list[str]:
        """Back to `REGISTRY=URL` strings (for a command line)."""
        return [f"{name}={url}" for name, urls in self.hosts.items() for url in urls]

    def __bool__(self) -> bool:
        return bool(self.hosts)
