"""Fixtures shared by the integration tests (real etcd and API server come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.cluster import ApiServer, Etcd
from tests.support.http import Http
from tests.support.secure import SecureApiServer


@pytest.fixture
async def http(apiserver: ApiServer) -> AsyncIterator[Http]:
    """Raw HTTP to the API server, for asserting exact codes, headers and bodies."""
    h = Http(apiserver.url)
    yield h
    await h.close()


@pytest.fixture
async def secure(etcd: Etcd, tmp_path: Path) -> AsyncIterator[SecureApiServer]:
    """A secured API server (TLS, authentication, authorization) with its PKI under tmp_path."""
    server = SecureApiServer(etcd.url, tmp_path, bookmark_interval=0.5)
    await server.start()
    yield server
    await server.stop()
