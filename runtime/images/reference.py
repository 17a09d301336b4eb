"""Image references: `[registry/]repository[:tag][@digest]`, as docker spells them.

A reference without a registry names an image in the local store by its short
name ("busybox:latest"); only when it is pulled or pushed is it taken to mean
Docker Hub (`docker.io/library/busybox`). A reference without tag or digest
means tag `latest`. The local store keys images by `Reference.name` plus tag,
exactly as the user typed the name, so `127.0.0.1:5000/app:v1` and `app:v1`
are different local images, as in docker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.images.digest import DigestError, parse_digest
from runtime.images.errors import ImageError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DOMAIN_RE = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


class InvalidReference(ImageError):
    """A string that is not an image reference."""


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. `domain` is None when the user gave none."""

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """Repository name including the registry, as typed: `127.0.0.1:5000/app`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def tag_or_latest(self) -> str:
        return self.tag or "latest"

    @property
    def registry(self) -> str:
        """Host[:port] to talk to when pulling or pushing."""
        if self.domain is None or self.domain == DOCKER_HUB:
            return DOCKER_HUB_API
        return self.domain

    @property
    def repository(self) -> str:
        """Repository path on the registry; Docker Hub's official images live under library/."""
        if (self.domain is None or self.domain == DOCKER_HUB) and "/" not in self.path:
            return f"library/{self.path}"
        return self.path

    @property
    def remote_ref(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag_or_latest

    def local_key(self) -> str:
        """Key of this image in the local index: `name:tag` (tag defaults to latest),
        or `name@digest` for an image pulled by digest alone."""
        if self.digest and not self.tag:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag_or_latest}"

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """Parse `text`; raise InvalidReference with the reason if it is malformed."""
    rest = text.strip()
    if not rest:
        raise InvalidReference("invalid image reference '': empty")
    digest = None
    if "@" in rest:
        rest, digest_text = rest.split("@", 1)
        try:
            digest = parse_digest(digest_text)
        except DigestError as err:
            raise InvalidReference(f"invalid image reference {text!r}: {err}") from err
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:  # a colon after the last slash separates the tag, not a port
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid image reference {text!r}: bad tag {tag!r}")
    domain = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _DOMAIN_RE.match(first):
            raise InvalidReference(f"invalid image reference {text!r}: bad registry {first!r}")
        domain, rest = first, remainder
    if not _PATH_RE.match(rest):
        raise InvalidReference(
            f"invalid image reference {text!r}: repository {rest!r} must be lowercase "
            "letters, digits and separators"
        )
    return Reference(domain=domain, path=rest, tag=tag, digest=digest)
