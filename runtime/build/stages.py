"""Multi-stage planning: a Dockerfile's instructions -> global ARGs and build stages. Pure, no I/O.

    ARG V=1                  <- global (meta) ARGs: visible to every FROM line only
    FROM busybox AS builder  <- stage 0, "builder"
    RUN ...
    FROM busybox             <- stage 1 (the last stage is the image unless --target)
    COPY --from=builder ...  <- a stage by name or index, or else an image

Docker's rules kept here: stages are numbered from 0; names are
case-insensitive, start with a letter and are unique; a stage may only start
from or copy from an *earlier* stage (a reference to its own or a later stage
is an error, not an image lookup); `--target` names a stage and the build stops
after it, so the stages after it are not built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.build.dockerfile import Instruction
from runtime.build.shellwords import raw_words
from runtime.images.errors import ImageError

_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")


class StageError(ImageError):
    """A Dockerfile whose stages are malformed, or a reference to a stage that cannot be used."""


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # lower case, from `FROM image AS name`
    instructions: list[Instruction]  # FROM first

    @property
    def label(self) -> str:
        """How messages name the stage."""
        return f"stage {self.name}" if self.name else f"stage {self.index}"


@dataclass(frozen=True)
class Plan:
    meta_args: list[Instruction]  # ARGs before the first FROM
    stages: list[Stage]

    def until(self, target: str | None) -> list[Stage]:
        """The stages to build: all of them, or up to and including the `target` stage."""
        if target is None:
            return self.stages
        stage = self._by_name(target.lower())
        if stage is None:
            names = [s.name for s in self.stages if s.name]
            raise StageError(f"target stage {target!r} could not be found (stages: {', '.join(names) or 'none named'})")
        return self.stages[: stage.index + 1]

    def _by_name(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def earlier(self, ref: str, *, current: int, by_index: bool, self_is_image: bool = False) -> Stage | None:
        """The earlier stage `ref` names (by name, or by index when `by_index`), or None when it names no
        stage (so it is an image). A reference to a later stage, or to the current one, is an error;
        except that with `self_is_image` (FROM lines) `FROM alpine AS alpine` names the image."""
        if by_index and ref.isdigit():
            index = int(ref)
            if index >= current:
                raise StageError(f"stage {index} is not an earlier stage (this is stage {current}); "
                                 "a stage can only use the stages before it")  # fmt: skip
            return self.stages[index]
        stage = self._by_name(ref.lower())
        if stage is None or (self_is_image and stage.index == current):
            return None
        if stage.index >= current:
            which = "itself" if stage.index == current else f"stage {stage.index}, defined later"
            raise StageError(f"{ref!r} refers to {which}; a stage can only use the stages before it")
        return stage


def stage_name(ins: Instruction) -> str | None:
    """The `AS name` of a FROM line (lower case), or None."""
    words = raw_words(ins.args)
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not _NAME_RE.match(name):
            raise StageError(f"line {ins.line}: invalid stage name {words[2]!r}: use a letter, then letters, "
                             "digits, '-', '_' or '.'")  # fmt: skip
        return name
    return None


def plan_stages(instructions: list[Instruction]) -> Plan:
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            name = stage_name(ins)
            if name is not None and any(s.name == name for s in stages):
                raise StageError(f"line {ins.line}: duplicate stage name {name!r}")
            stages.append(Stage(index=len(stages), name=name, instructions=[ins]))
        elif stages:
            stages[-1].instructions.append(ins)
        elif ins.keyword == "ARG":
            meta.append(ins)
        else:
            raise StageError(f"line {ins.line}: the first instruction must be FROM (or ARG before FROM), "
                             f"got {ins.keyword}")  # fmt: skip
    if not stages:
        raise StageError("the Dockerfile has no FROM")
    return Plan(meta_args=meta, stages=stages)
