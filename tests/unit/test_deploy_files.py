"""deploy/: the provisioning scripts, systemd units and Vagrantfile are checked by the tools that
will run them, where those tools are installed (the full check is `deploy/vm-test`, too slow for
the suite: it boots three VMs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCRIPTS = [*sorted((DEPLOY / "provision").glob("*.sh")), *sorted((DEPLOY / "vmtest" / "guest").glob("*.sh")),
           DEPLOY / "vmtest" / "guest" / "kubelite-vmtest-boot"]
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {tool}); the check needs it")
    return path


def test_provisioning_has_the_expected_pieces() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"common.sh", "control-plane.sh", "worker.sh"} <= names
    assert [u.name for u in UNITS] == ["kubelite-agent.service", "kubelite-server.service"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = _need("shellcheck")
    result = subprocess.run([shellcheck, "-s", "bash", *map(str, SCRIPTS)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_units_verify(unit: Path) -> None:
    analyze = _need("systemd-analyze")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    # The units run the venv that provisioning creates; on a machine that was not provisioned
    # that binary is absent, which is the one complaint allowed here.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "/opt/kubelite/bin/kubelite is not executable" not in line]
    assert not complaints, "\n".join(complaints)


# Evaluates the Vagrantfile with a stand-in for Vagrant's configuration object that records the
# machines it defines, so the worker count and addresses are what a `vagrant up` would create.
RECORDER = r"""
Machine = Struct.new(:name, :hostname, :ip, :provisioners)
class Recorder
  attr_reader :machines
  def initialize(machines = nil, current = nil) @machines = machines || []; @current = current end
  def vm; self end
  def define(name, **_opts)
    m = Machine.new(name, nil, nil, [])
    @machines << m
    yield Recorder.new(@machines, m)
  end
  def hostname=(h) @current.hostname = h end
  def network(kind, ip:) @current.ip = ip if kind == "private_network" end
  def provision(name, **opts) (@current ? @current.provisioners : []) << [name, opts[:path], opts[:args]] end
  def provider(_name) yield Recorder.new(@machines), Recorder.new(@machines) end
  def method_missing(*_args, **_kw) self end
  def respond_to_missing?(*) true end
end
module Vagrant
  def self.configure(_version)
    $rec = Recorder.new
    yield $rec
  end
end
load ARGV[0]
$rec.machines.each do |m|
  scripts = m.provisioners.map { |p| ([p[1]] + (p[2] || [])).join(" ") }
  puts [m.name, m.hostname, m.ip, scripts].join("|")
end
"""


@pytest.mark.parametrize(("workers", "expected"), [
    (None, 2),
    ("3", 3),
])
def test_vagrantfile_defines_control_plane_and_workers(tmp_path: Path, workers: str | None, expected: int) -> None:
    ruby = _need("ruby")
    syntax = subprocess.run([ruby, "-c", str(DEPLOY / "Vagrantfile")], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    script = tmp_path / "recorder.rb"
    script.write_text(RECORDER)
    env = {"PATH": "/usr/bin:/bin"} | ({"KUBELITE_WORKERS": workers} if workers else {})
    result = subprocess.run([ruby, str(script), str(DEPLOY / "Vagrantfile")], capture_output=True, text=True,
                            check=False, env=env, cwd=DEPLOY)
    assert result.returncode == 0, result.stderr
    rows = [line.split("|") for line in result.stdout.splitlines()]
    assert rows[0] == ["cp", "cp", "192.168.56.10", "provision/control-plane.sh 192.168.56.10"]
    assert rows[1:] == [[f"worker-{i}", f"worker-{i}", f"192.168.56.{10 + i}",
                         f"provision/worker.sh worker-{i} 192.168.56.{10 + i}"] for i in range(1, expected + 1)]
