"""Dockerfile parsing: text -> instructions, with no I/O and no variable expansion yet.

Handles comments, line continuations (a trailing backslash; comment and empty
lines inside a continuation are skipped, as Docker does), leading `--flag=value`
options (COPY --chown) and the JSON (exec) form. Parser directives such as
`# syntax=` are comments here. Expansion happens in the builder, step by step,
because it depends on the ARG and ENV seen so far.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from runtime.images.errors import ImageError

KNOWN = {
    "FROM", "ARG", "ENV", "LABEL", "WORKDIR", "COPY", "ADD", "RUN", "USER", "EXPOSE",
    "VOLUME", "CMD", "ENTRYPOINT", "SHELL", "STOPSIGNAL", "MAINTAINER", "HEALTHCHECK", "ONBUILD",
}  # fmt: skip
FLAGS = {"COPY": {"chown", "chmod", "from", "link"}, "ADD": {"chown", "chmod", "link", "checksum"}}


class DockerfileError(ImageError):
    """A Dockerfile that does not parse; the message names the line."""


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the text after the keyword and flags, continuations joined
    line: int  # 1-based line where the instruction starts
    flags: dict[str, str] = field(default_factory=dict)
    exec_form: list[str] | None = None  # the JSON array form, when used

    @property
    def text(self) -> str:
        """The instruction as `docker build` echoes it: keyword, flags, arguments."""
        flags = "".join(f"--{k}={v} " for k, v in sorted(self.flags.items()))
        return f"{self.keyword} {flags}{self.args}".rstrip()


def parse_dockerfile(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and (not stripped or stripped.startswith("#")):
            continue  # inside a continuation, like Docker
        if not pending:
            start = lineno
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        out.append(_instruction(" ".join(p.strip() for p in pending if p.strip()), start))
        pending = []
    if pending:
        out.append(_instruction(" ".join(p.strip() for p in pending if p.strip()), start))
    if not out:
        raise DockerfileError("the Dockerfile is empty")
    return out


def _instruction(line: str, lineno: int) -> Instruction:
    keyword, _, rest = line.partition(" ")
    keyword = keyword.upper()
    if keyword not in KNOWN:
        raise DockerfileError(f"line {lineno}: unknown instruction: {keyword}")
    rest = rest.strip()
    flags: dict[str, str] = {}
    allowed = FLAGS.get(keyword, set())
    while rest.startswith("--") and allowed:
        token, _, rest = rest.partition(" ")
        name, eq, value = token[2:].partition("=")
        if name not in allowed or not eq:
            raise DockerfileError(f"line {lineno}: unknown flag for {keyword}: {token}")
        flags[name] = value
        rest = rest.strip()
    exec_form = None
    if rest.startswith("["):
        try:
            parsed = json.loads(rest)
        except ValueError:
            parsed = None  # not JSON after all: Docker treats it as the shell form
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            exec_form = parsed
    if not rest and keyword not in ("RUN", "CMD", "ENTRYPOINT"):
        raise DockerfileError(f"line {lineno}: {keyword} requires at least one argument")
    return Instruction(keyword=keyword, args=rest, line=lineno, flags=flags, exec_form=exec_form)
