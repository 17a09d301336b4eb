"""Instructions that change only the image config: pure functions of (config, instruction, env).

Docker's rules kept here: shell forms run through the current SHELL
(default `/bin/sh -c`); ENTRYPOINT clears a CMD inherited from the base image
but not one set earlier in this Dockerfile; WORKDIR is relative to the previous
WORKDIR; EXPOSE defaults to tcp.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping

from runtime.build.dockerfile import Instruction
from runtime.build.shellwords import process_word, raw_words, split_words
from runtime.images.config import ImageConfig
from runtime.images.errors import ImageError

DEFAULT_SHELL = ("/bin/sh", "-c")


class InstructionError(ImageError):
    """An instruction whose arguments are invalid."""


def command(ins: Instruction, shell: tuple[str, ...]) -> tuple[str, ...]:
    """argv of RUN/CMD/ENTRYPOINT: the exec form as is, the shell form through the shell."""
    if ins.exec_form is not None:
        return tuple(ins.exec_form)
    return (*shell, ins.args) if ins.args else ()


def pairs(ins: Instruction, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """`k=v k2="v 2"` pairs of ENV/LABEL, or the legacy `ENV key value with spaces`."""
    words = raw_words(ins.args)
    if words and "=" not in words[0]:
        if ins.keyword != "ENV" or len(words) < 2:
            raise InstructionError(f"line {ins.line}: {ins.keyword} needs key=value pairs")
        key, _, rest = ins.args.strip().partition(" ")
        return [(key, process_word(rest.strip(), env))]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        key = process_word(key, env)
        if not eq or not key:
            raise InstructionError(f"line {ins.line}: {ins.keyword} needs key=value, got {word!r}")
        out.append((key, process_word(value, env)))
    return out


def apply(
    config: ImageConfig, ins: Instruction, env: Mapping[str, str], *, shell: tuple[str, ...], cmd_set: bool
) -> ImageConfig:
    """The config after a metadata instruction (ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, CMD, ...)."""
    kw = ins.keyword
    replace = dataclasses.replace
    if kw == "ENV":
        for key, value in pairs(ins, env):
            config = config.with_env(key, value)
            env = {**env, key: value}
        return config
    if kw == "LABEL":
        return replace(config, labels={**config.labels, **dict(pairs(ins, env))})
    if kw == "WORKDIR":
        path = process_word(ins.args, env)
        return replace(config, working_dir=posixpath.normpath(posixpath.join(config.working_dir or "/", path)))
    if kw == "USER":
        return replace(config, user=process_word(ins.args, env))
    if kw == "EXPOSE":
        ports = set(config.exposed_ports)
        for word in split_words(ins.args, env):
            port, _, proto = word.partition("/")
            if not port.replace("-", "").isdigit() or proto not in ("", "tcp", "udp", "sctp"):
                raise InstructionError(f"line {ins.line}: invalid port {word!r}")
            ports.add(f"{port}/{proto or 'tcp'}")
        return replace(config, exposed_ports=tuple(sorted(ports)))
    if kw == "VOLUME":
        paths = ins.exec_form if ins.exec_form is not None else split_words(ins.args, env)
        return replace(config, volumes=tuple(sorted(set(config.volumes) | set(paths))))
    if kw == "CMD":
        return replace(config, cmd=command(ins, shell))
    if kw == "ENTRYPOINT":
        entry = command(ins, shell)
        return replace(config, entrypoint=entry or None, cmd=config.cmd if cmd_set else None)
    if kw == "STOPSIGNAL":
        return replace(config, stop_signal=process_word(ins.args, env))
    if kw == "MAINTAINER":
        return replace(config, labels={**config.labels, "maintainer": ins.args})
    raise InstructionError(f"line {ins.line}: {kw} is not a metadata instruction")
