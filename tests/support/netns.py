"""Commands on this machine and inside network namespaces the tests made (`ip netns exec`)."""

from __future__ import annotations

import subprocess


def sh(*argv: str, check: bool = True, input: str | None = None,
       timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """Run `argv`; with `check`, a non-zero exit fails the test with the command's output."""
    result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {result.returncode}: {result.stdout}{result.stderr}")
    return result


def in_ns(ns: str, *argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv, check=check, input=input)
