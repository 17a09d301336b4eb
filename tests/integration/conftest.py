"""Fixtures shared by the integration tests (real etcd and API server come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.cluster import ApiServer
from tests.support.http import Http


@pytest.fixture
async def http(apiserver: ApiServer) -> AsyncIterator[Http]:
    """Raw HTTP to the API server, for asserting exact codes, headers and bodies."""
    h = Http(apiserver.url)
    yield h
    await h.close()
