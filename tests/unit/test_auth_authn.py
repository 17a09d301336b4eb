"""Who a request is: bearer tokens, the unix-socket identity, and what counts as bad credentials.
(Client certificates are exercised over real TLS in tests/integration/test_auth_*.py.)"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from apiserver.auth.authn import AUTHENTICATED_GROUP, Authenticator, BadCredentials
from apiserver.auth.pki import ADMIN, Identity
from apiserver.auth.tokens import UserTokenStore


def request(headers: dict[str, str] | None = None, *, sockname: object = ("127.0.0.1", 6443)) -> object:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: {"sockname": sockname}.get(name, default)
    return make_mocked_request("GET", "/api/v1/pods", headers=headers or {}, transport=transport)


@pytest.fixture
def store(tmp_path: Path) -> UserTokenStore:
    return UserTokenStore(tmp_path / "tokens.json")


def test_bearer_tokens(store: UserTokenStore) -> None:
    token = store.add(Identity("alice", ("devs",)))
    auth = Authenticator(store)
    assert auth.authenticate(request()) is None  # anonymous
    assert auth.authenticate(request({"Authorization": f"Bearer {token}"})) == Identity(
        "alice", ("devs", AUTHENTICATED_GROUP))
    assert auth.authenticate(request({"Authorization": f"bearer  {token} "})) is not None
    for header in (f"Bearer {token}x", "Bearer", "Bearer ", f"Basic {token}", "Token abc"):
        with pytest.raises(BadCredentials):
            auth.authenticate(request({"Authorization": header}))
    with pytest.raises(BadCredentials):  # no token store: every token is unknown
        Authenticator().authenticate(request({"Authorization": f"Bearer {token}"}))


def test_unix_socket_identity_applies_only_on_the_unix_socket(store: UserTokenStore) -> None:
    auth = Authenticator(store, unix_socket_identity=ADMIN)
    assert auth.authenticate(request(sockname="/run/kubelite/apiserver.sock")) == Identity(
        ADMIN.user, (*ADMIN.groups, AUTHENTICATED_GROUP))
    assert auth.authenticate(request()) is None
    token = store.add(Identity("bob"))
    # credentials presented on the socket win over the socket's identity
    assert auth.authenticate(request({"Authorization": f"Bearer {token}"}, sockname="/x.sock")) == Identity(
        "bob", (AUTHENTICATED_GROUP,))
    assert Authenticator(store).authenticate(request(sockname="/x.sock")) is None
