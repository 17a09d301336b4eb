"""Tokens: join tokens (kubeadm's bootstrap-token format), user bearer tokens, and the CA hash.

Join token: `[a-z0-9]{6}.[a-z0-9]{16}`, an id and a secret. The id is public (it names which
signature of the cluster info a joining node should check); the secret is the credential.
Join tokens are short-lived (24 h by default) and stored in clear in a 0600 file, as kubeadm
stores them in a Secret: the server must know the secret to sign the cluster info with it
(see `join.py`), and the operator must be able to read the token to hand it to nodes.

User bearer tokens are long-lived, so the server stores only their SHA-256: a copy of the
token file lets nobody log in. Tokens are 32 random bytes, so an unsalted hash is safe
(no dictionary to attack), and a lookup by hash leaks nothing through timing that would
help an attacker find a valid token.

CA hash: `sha256:<hex>` of the DER SubjectPublicKeyInfo of the CA certificate, exactly as
kubeadm's `--discovery-token-ca-cert-hash`, so the value printed by `openssl x509 -pubkey |
openssl pkey -pubin -outform der | sha256sum` matches.

Every comparison of a secret is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from apiserver.auth.files import write_private
from apiserver.auth.pki import Identity

JOIN_TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
CA_HASH_RE = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
JOIN_TOKEN_TTL = dt.timedelta(hours=24)
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class TokenError(ValueError):
    """A token or hash that is malformed, unknown or expired; the message says which."""


# ------------------------------------------------------------------ join tokens


@dataclass(frozen=True, slots=True)
class JoinToken:
    id: str
    secret: str
    expires: dt.datetime | None = None

    def __str__(self) -> str:
        return f"{self.id}.{self.secret}"

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires is not None and (now or dt.datetime.now(dt.UTC)) >= self.expires


def generate_join_token(*, ttl: dt.timedelta | None = JOIN_TOKEN_TTL, now: dt.datetime | None = None) -> JoinToken:
    """A fresh random join token; `ttl=None` never expires."""
    def rand(n: int) -> str:
        return "".join(secrets.choice(_ALPHABET) for _ in range(n))

    expires = (now or dt.datetime.now(dt.UTC)) + ttl if ttl is not None else None
    return JoinToken(rand(6), rand(16), expires)


def parse_join_token(text: str) -> JoinToken:
    m = JOIN_TOKEN_RE.match(text.strip())
    if m is None:
        raise TokenError("a join token looks like abcdef.0123456789abcdef: 6 then 16 characters from [a-z0-9], "
                         "joined by a dot")
    return JoinToken(m.group(1), m.group(2))


class JoinTokenStore:
    """Join tokens in `<path>` (JSON, 0600): `{"tokens": [{"id", "secret", "expires"}]}`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[JoinToken]:
        if not self.path.exists():
            return []
        doc = json.loads(self.path.read_text())
        out = []
        for t in doc.get("tokens", []):
            expires = dt.datetime.fromisoformat(t["expires"]) if t.get("expires") else None
            out.append(JoinToken(t["id"], t["secret"], expires))
        return out

    def _save(self, tokens: list[JoinToken]) -> None:
        doc = {"tokens": [{"id": t.id, "secret": t.secret,
                           "expires": t.expires.isoformat() if t.expires else None} for t in tokens]}
        write_private(self.path, json.dumps(doc, indent=2) + "\n")

    def add(self, token: JoinToken) -> JoinToken:
        tokens = [t for t in self.load() if t.id != token.id and not t.expired()]
        self._save([*tokens, token])
        return token

    def create(self, *, ttl: dt.timedelta | None = JOIN_TOKEN_TTL) -> JoinToken:
        return self.add(generate_join_token(ttl=ttl))

    def ensure(self, *, ttl: dt.timedelta | None = JOIN_TOKEN_TTL) -> JoinToken:
        """A token that is valid now: the newest unexpired one, else a new one (idempotent restarts)."""
        valid = [t for t in self.load() if not t.expired()]
        return valid[-1] if valid else self.create(ttl=ttl)

    def valid(self, now: dt.datetime | None = None) -> list[JoinToken]:
        return [t for t in self.load() if not t.expired(now)]

    def authenticate(self, presented: str, now: dt.datetime | None = None) -> JoinToken:
        """The stored token `presented` stands for; TokenError if malformed, unknown or expired."""
        wanted = parse_join_token(presented)
        for token in self.load():
            if token.id == wanted.id and hmac.compare_digest(token.secret.encode(), wanted.secret.encode()):
                if token.expired(now):
                    raise TokenError(f"the join token {token.id}.<secret> has expired; "
                                     "create a new one on the control plane")
                return token
        raise TokenError("the join token is not known to this cluster")


# ------------------------------------------------------------------ user bearer tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_bearer_token() -> str:
    return secrets.token_urlsafe(32)


class UserTokenStore:
    """Bearer tokens of users, by SHA-256 only, in `<path>` (JSON, 0600):
    `{"tokens": [{"sha256", "user", "groups"}]}`. The store is read once, at start, and on
    `reload()`; `add()` persists and updates the in-memory table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_hash: dict[str, Identity] = {}
        self.reload()

    def reload(self) -> None:
        doc: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._by_hash = {t["sha256"]: Identity(t["user"], tuple(t.get("groups") or ()))
                         for t in doc.get("tokens", [])}

    def add(self, identity: Identity, token: str | None = None) -> str:
        """Register a token for `identity` (a new random one unless given); returns the token."""
        token = token or generate_bearer_token()
        if len(token) < 16:
            raise TokenError("a bearer token must be at least 16 characters long")
        self._by_hash[hash_token(token)] = identity
        doc = {"tokens": [{"sha256": h, "user": i.user, "groups": list(i.groups)}
                          for h, i in self._by_hash.items()]}
        write_private(self.path, json.dumps(doc, indent=2) + "\n")
        return token

    def authenticate(self, token: str) -> Identity | None:
        digest = hash_token(token)
        for stored, identity in self._by_hash.items():
            if hmac.compare_digest(stored, digest):
                return identity
        return None


# ------------------------------------------------------------------ CA hash


def ca_cert_hash(cert: x509.Certificate | bytes) -> str:
    """`sha256:<hex>` of the certificate's DER SubjectPublicKeyInfo (kubeadm's CA pin)."""
    if isinstance(cert, bytes):
        cert = x509.load_pem_x509_certificate(cert)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def parse_ca_hash(text: str) -> str:
    """Normalize a `sha256:<64 hex>` pin (lower-case hex), or raise TokenError saying what is wrong."""
    m = CA_HASH_RE.match(text.strip())
    if m is None:
        raise TokenError(f"invalid CA certificate hash {text!r}: expected sha256:<64 hex digits>, as printed by "
                         "`kubelite server` or kubeadm")
    return "sha256:" + m.group(1).lower()


def ca_hash_matches(cert: x509.Certificate | bytes, pins: str | list[str]) -> bool:
    """Whether the certificate's public key matches any of the pins (constant-time)."""
    actual = ca_cert_hash(cert).encode()
    wanted = [pins] if isinstance(pins, str) else pins
    return any(hmac.compare_digest(actual, parse_ca_hash(p).encode()) for p in wanted)
