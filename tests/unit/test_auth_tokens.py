"""Join tokens, hashed user bearer tokens, and the kubeadm-compatible CA hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from apiserver.auth.pki import ADMIN, CertificateAuthority, Identity
from apiserver.auth.tokens import (
    JoinTokenStore,
    TokenError,
    UserTokenStore,
    ca_cert_hash,
    ca_hash_matches,
    generate_join_token,
    parse_ca_hash,
    parse_join_token,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_join_tokens_have_kubeadms_format_and_are_random() -> None:
    tokens = {str(generate_join_token()) for _ in range(200)}
    assert len(tokens) == 200
    assert all(re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", t) for t in tokens)


@pytest.mark.parametrize("bad", ["", "abcdef", "abcdef.0123456789abcde", "ABCDEF.0123456789abcdef",
                                 "abcdef:0123456789abcdef", "abcdefg.0123456789abcdef", "abc-ef.0123456789abcdef"])
def test_malformed_join_tokens_are_refused(bad: str) -> None:
    with pytest.raises(TokenError, match="6 then 16"):
        parse_join_token(bad)


def test_join_token_store(tmp_path: Path) -> None:
    store = JoinTokenStore(tmp_path / "join-tokens.json")
    first = store.ensure()
    assert mode(store.path) == 0o600
    assert store.ensure() == first  # idempotent: a valid token is reused
    assert store.authenticate(str(first)).id == first.id
    with pytest.raises(TokenError, match="not known"):
        store.authenticate(f"{first.id}.{'0' * 16}")
    with pytest.raises(TokenError, match="not known"):
        store.authenticate(str(generate_join_token()))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    with pytest.raises(TokenError, match="expired"):
        store.authenticate(str(first), now=later)
    forever = store.create(ttl=None)
    assert store.authenticate(str(forever), now=later) == forever


def test_user_tokens_are_stored_hashed_only(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = UserTokenStore(path)
    token = store.add(Identity("alice", ("devs",)))
    assert len(token) >= 40
    assert mode(path) == 0o600
    text = path.read_text()
    assert token not in text
    assert hashlib.sha256(token.encode()).hexdigest() in text
    assert json.loads(text)["tokens"][0]["user"] == "alice"
    reopened = UserTokenStore(path)
    assert reopened.authenticate(token) == Identity("alice", ("devs",))
    assert reopened.authenticate(token + "x") is None
    assert reopened.authenticate("") is None
    with pytest.raises(TokenError):
        store.add(ADMIN, "short")


def test_ca_hash_is_sha256_of_the_subject_public_key_info() -> None:
    ca = CertificateAuthority.create()
    pin = ca_cert_hash(ca.cert)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pin)
    assert ca_cert_hash(ca.cert_pem) == pin
    assert ca_hash_matches(ca.cert, pin)
    assert ca_hash_matches(ca.cert, pin.upper().replace("SHA256", "sha256"))
    assert ca_hash_matches(ca.cert, [ca_cert_hash(CertificateAuthority.create().cert), pin])
    assert not ca_hash_matches(ca.cert, ca_cert_hash(CertificateAuthority.create().cert))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_ca_hash_matches_kubeadms_openssl_recipe() -> None:
    ca = CertificateAuthority.create()
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=ca.cert_pem, capture_output=True,
                         check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True,
                         check=True).stdout
    assert ca_cert_hash(ca.cert) == "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize("bad", ["", "sha256:", "sha1:" + "a" * 40, "sha256:" + "g" * 64, "a" * 64,
                                 "sha256:" + "a" * 63])
def test_malformed_ca_hashes_are_refused(bad: str) -> None:
    with pytest.raises(TokenError, match="sha256:<64 hex digits>"):
        parse_ca_hash(bad)
