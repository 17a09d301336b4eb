"""Registry authentication: the anonymous bearer-token flow of the distribution spec.

A registry answers 401 with `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`;
the client asks the realm for a token with that service and scope (no
credentials: anonymous pulls, and pushes to registries that allow them) and
retries with `Authorization: Bearer <token>`. Basic auth challenges are
reported as such: kubelite keeps no registry credentials.
"""

from __future__ import annotations

import re

from runtime.images.errors import ImageError

_PARAM_RE = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


class AuthError(ImageError):
    """A challenge we cannot answer, or a token endpoint that failed."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split `Bearer realm="x",service="y"` into ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM_RE.finditer(rest)
    }
    return scheme.lower(), params
