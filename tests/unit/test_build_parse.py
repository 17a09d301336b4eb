"""Dockerfile parsing, word expansion, .dockerignore and config rules: pure, no I/O."""

from __future__ import annotations

import pytest

from runtime.build.context import DockerIgnore
from runtime.build.dockerfile import DockerfileError, parse_dockerfile
from runtime.build.metadata import DEFAULT_SHELL, apply
from runtime.build.shellwords import WordError, process_word, split_words
from runtime.build.stages import StageError, plan_stages
from runtime.images.config import ImageConfig


def test_continuations_comments_flags_and_forms() -> None:
    text = """\
# syntax=docker/dockerfile:1
FROM busybox AS base
RUN echo a \\
    # a comment inside a continuation is skipped
    && echo b

COPY --chown=1:2 ["a b", "/dst/"]
CMD ["sh", "-c", "echo hi"]
entrypoint echo lower-case keyword
"""
    ins = parse_dockerfile(text)
    assert [i.keyword for i in ins] == ["FROM", "RUN", "COPY", "CMD", "ENTRYPOINT"]
    assert ins[1].args == "echo a && echo b" and ins[1].line == 3 and ins[1].exec_form is None
    assert ins[2].flags == {"chown": "1:2"} and ins[2].exec_form == ["a b", "/dst/"]
    assert ins[3].exec_form == ["sh", "-c", "echo hi"]
    assert ins[4].text == "ENTRYPOINT echo lower-case keyword"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("FROM busybox\nFROB x\n", "line 2: unknown instruction: FROB"),
        ("FROM busybox\nCOPY --bogus=1 a b\n", "unknown flag"),
        ("FROM busybox\nWORKDIR\n", "WORKDIR requires at least one argument"),
    ],
)
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message):
        parse_dockerfile(text)


def test_not_json_is_shell_form() -> None:
    (ins,) = parse_dockerfile("RUN [ -f /x ] && echo yes\n")
    assert ins.exec_form is None


ENV = {"A": "1", "EMPTY": "", "SP": "a b"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "1"),
        ("${A}x", "1x"),
        ("${MISSING:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${A:+alt}", "alt"),
        ("${MISSING:+alt}", ""),
        ("'$A'", "$A"),
        ('"$A and $SP"', "1 and a b"),
        ("\\$A", "$A"),
        ("cost$", "cost$"),
    ],
)
def test_process_word(word: str, expected: str) -> None:
    assert process_word(word, ENV) == expected


def test_split_words_keeps_quoted_spaces() -> None:
    assert split_words("k=\"v 1\" x=$SP 'y z'", ENV) == ["k=v 1", "x=a", "b", "y z"]
    with pytest.raises(WordError):
        split_words('"open', ENV)


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("secret.key", True),
        ("sub/secret.key", False),  # "*.key" matches at the top only, as in Docker
        ("node_modules/x/y.js", True),
        ("docs/a/b/c.md", True),
        ("docs/keep.md", False),  # re-included by the exception
        (".git/config", True),
        ("src/main.py", False),
    ],
)
def test_dockerignore(path: str, ignored: bool) -> None:
    rules = DockerIgnore(["# comment", "*.key", "node_modules", "docs/**/*.md", "!docs/keep.md", "/.git"])
    assert rules.ignored(path) is ignored


def _apply(config: ImageConfig, line: str, *, cmd_set: bool = False) -> ImageConfig:
    (ins,) = parse_dockerfile(line)
    return apply(config, ins, {**config.env_dict, "V": "val"}, shell=DEFAULT_SHELL, cmd_set=cmd_set)


def test_config_rules() -> None:
    base = ImageConfig(cmd=("sh",), working_dir="/")
    c = _apply(base, 'ENV A=1 B="two words" C=$V')
    assert c.env_dict == {"A": "1", "B": "two words", "C": "val"}
    assert _apply(base, "ENV LEGACY some value").env_dict == {"LEGACY": "some value"}
    c = _apply(_apply(base, "WORKDIR /app"), "WORKDIR sub/../src")
    assert c.working_dir == "/app/src"
    assert _apply(base, "EXPOSE 80 53/udp").exposed_ports == ("53/udp", "80/tcp")
    assert _apply(base, "CMD echo hi").cmd == ("/bin/sh", "-c", "echo hi")
    # ENTRYPOINT drops an inherited CMD but keeps one set earlier in the same Dockerfile.
    assert _apply(base, 'ENTRYPOINT ["/bin/app"]').cmd is None
    kept = _apply(base, 'ENTRYPOINT ["/bin/app"]', cmd_set=True)
    assert kept.cmd == ("sh",) and kept.argv == ["/bin/app", "sh"]
    assert _apply(base, 'VOLUME ["/a", "/b"]').volumes == ("/a", "/b")
    assert _apply(base, 'LABEL a=1 "b c"=2').labels == {"a": "1", "b c": "2"}


def test_env_and_label_values_expand_as_one_word() -> None:
    # Docker cuts k=v pairs first, then expands each value: an ARG with spaces stays whole
    base = ImageConfig(cmd=("sh",), working_dir="/")
    (ins,) = parse_dockerfile(r'ENV GREETING=$GREETING LOUD=${GREETING}! A=one\ two B="x $GREETING"')
    env = {"GREETING": "Hello from kubelite"}
    assert apply(base, ins, env, shell=DEFAULT_SHELL, cmd_set=False).env_dict == {
        "GREETING": "Hello from kubelite", "LOUD": "Hello from kubelite!", "A": "one two",
        "B": "x Hello from kubelite"}
    (label,) = parse_dockerfile('LABEL "title"="$GREETING" plain=$GREETING')
    assert apply(base, label, env, shell=DEFAULT_SHELL, cmd_set=False).labels == {
        "title": "Hello from kubelite", "plain": "Hello from kubelite"}
    with pytest.raises(WordError):
        apply(base, parse_dockerfile('ENV A="unterminated')[0], env, shell=DEFAULT_SHELL, cmd_set=False)


def test_stages_global_args_names_and_targets() -> None:
    plan = plan_stages(parse_dockerfile(
        "ARG V=1\nFROM busybox:$V AS Builder\nRUN make\nFROM builder AS test\nFROM busybox\nCOPY --from=0 /a /b\n"
    ))  # fmt: skip
    assert [i.text for i in plan.meta_args] == ["ARG V=1"]
    assert [(s.index, s.name, len(s.instructions)) for s in plan.stages] == [(0, "builder", 2), (1, "test", 1),
                                                                              (2, None, 2)]  # fmt: skip
    assert [s.index for s in plan.until(None)] == [0, 1, 2]
    assert [s.index for s in plan.until("TEST")] == [0, 1]  # names are case-insensitive
    with pytest.raises(StageError, match="target stage 'nope' could not be found \\(stages: builder, test\\)"):
        plan.until("nope")
    assert plan.earlier("BUILDER", current=1, by_index=False) == plan.stages[0]
    assert plan.earlier("0", current=2, by_index=True) == plan.stages[0]
    assert plan.earlier("alpine", current=2, by_index=True) is None  # not a stage: an image
    assert plan.earlier("test", current=1, by_index=False, self_is_image=True) is None  # FROM test AS test
    with pytest.raises(StageError, match="refers to itself"):
        plan.earlier("test", current=1, by_index=True)
    with pytest.raises(StageError, match="refers to stage 1, defined later"):
        plan.earlier("test", current=0, by_index=False)
    with pytest.raises(StageError, match="stage 2 is not an earlier stage"):
        plan.earlier("2", current=2, by_index=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a AS x\nFROM b AS X\n", "line 2: duplicate stage name 'x'"),
        ("FROM a AS 1x\n", "line 1: invalid stage name '1x'"),
        ("RUN true\nFROM a\n", "line 1: the first instruction must be FROM"),
        ("ARG A\n", "no FROM"),
    ],
)
def test_stage_errors(text: str, message: str) -> None:
    with pytest.raises(StageError, match=message):
        plan_stages(parse_dockerfile(text))
