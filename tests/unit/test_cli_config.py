"""Server resolution: --server beats $KUBELITE_SERVER beats a kubeconfig beats the default."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cli import config

DEFAULTS = config.DEFAULT_KUBECONFIGS  # before the fixture below hides them
KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: admin
contexts:
- name: admin
  context: {cluster: c, user: u, namespace: team}
clusters:
- name: c
  cluster: {server: "http://10.0.0.1:6443"}
users:
- name: u
  user: {token: secret}
"""


def _args(**kwargs: object) -> argparse.Namespace:
    return argparse.Namespace(**{"server": None, "kubeconfig": None, **kwargs})


@pytest.fixture(autouse=True)
def _no_default_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DEFAULT_KUBECONFIGS", ())


def test_order_flag_env_kubeconfig_default(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    env = {"KUBECONFIG": str(path)}
    got = config.resolve(_args(server="10.9.9.9:6443"), env)
    assert (got.server, got.source, got.namespace) == ("http://10.9.9.9:6443", "--server", "team")
    got = config.resolve(_args(), {**env, "KUBELITE_SERVER": "http://h:1/"})
    assert (got.server, got.source) == ("http://h:1", "$KUBELITE_SERVER")
    got = config.resolve(_args(), env)
    assert (got.server, got.source, got.token, got.namespace) == (
        "http://10.0.0.1:6443", f"kubeconfig {path}", "secret", "team")
    assert config.resolve(_args(), {}) == config.Target(config.DEFAULT_SERVER, config.DEFAULT_SOURCE)


def test_missing_named_kubeconfig_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.resolve(_args(kubeconfig=str(tmp_path / "nope")), {})


def test_server_admin_kubeconfig_is_a_default() -> None:
    assert Path("/var/lib/kubelite/server/admin.kubeconfig") in DEFAULTS
