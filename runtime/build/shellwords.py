"""Dockerfile word processing: quotes, backslash escapes and `$VAR` substitution.

Follows Docker's shell lexer for the instructions that substitute variables
(FROM, ENV, ARG, LABEL, WORKDIR, COPY, ADD, USER, EXPOSE, VOLUME, STOPSIGNAL):
`$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alternative}`; single quotes
are literal, double quotes allow substitution, a backslash escapes the next
character. RUN, CMD and ENTRYPOINT are not processed here: their shell does it.
"""

from __future__ import annotations

from collections.abc import Mapping

from runtime.images.errors import ImageError


class WordError(ImageError):
    """A malformed word: an unterminated quote or ${...}."""


def split_words(text: str, env: Mapping[str, str]) -> list[str]:
    """Split on unquoted whitespace, then process quotes, escapes and variables in each word."""
    return _process(text, env, split=True)


def raw_words(text: str) -> list[str]:
    """Split on unquoted whitespace only, leaving quotes, escapes and variables for later:
    ENV and LABEL cut `k=v` pairs first and expand each value as one word, so that
    `ENV GREETING=$GREETING` keeps a value with spaces whole (as Docker does)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and quote != "'":
            cur += [c, text[i + 1]]
            i += 2
            continue
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in " \t\r\n":
            if cur:
                words.append("".join(cur))
                cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    if quote:
        raise WordError(f"unterminated {'single' if quote == chr(39) else 'double'} quote in {text!r}")
    if cur:
        words.append("".join(cur))
    return words


def process_word(text: str, env: Mapping[str, str]) -> str:
    """Process quotes, escapes and variables in `text` as a single word (no splitting)."""
    words = _process(text, env, split=False)
    return words[0] if words else ""


def _process(text: str, env: Mapping[str, str], *, split: bool) -> list[str]:
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if split and c in " \t\r\n":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            i += 1
            continue
        in_word = True
        if c == "\\" and i + 1 < n:
            cur.append(text[i + 1])
            i += 2
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise WordError(f"unterminated single quote in {text!r}")
            cur.append(text[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\$':
                    cur.append(text[i + 1])
                    i += 2
                elif text[i] == "$":
                    value, i = _variable(text, i, env)
                    cur.append(value)
                else:
                    cur.append(text[i])
                    i += 1
            if i >= n:
                raise WordError(f"unterminated double quote in {text!r}")
            i += 1
        elif c == "$":
            value, i = _variable(text, i, env)
            if not split:
                cur.append(value)
                continue
            for ch in value:  # an unquoted value is split on whitespace, as a shell would
                if ch in " \t\r\n":
                    if in_word and cur:
                        words.append("".join(cur))
                        cur = []
                    in_word = False
                else:
                    cur.append(ch)
                    in_word = True
        else:
            cur.append(c)
            i += 1
    if in_word or not split:
        words.append("".join(cur))
    return words


def _variable(text: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
    """Expand the variable at text[i] == '$'; return (value, index after it)."""
    n = len(text)
    if i + 1 < n and text[i + 1] == "{":
        end = text.find("}", i + 2)
        if end < 0:
            raise WordError(f"missing '}}' in {text!r}")
        body = text[i + 2 : end]
        for op in (":-", ":+"):
            if op in body:
                name, word = body.split(op, 1)
                value = env.get(name, "")
                if op == ":-":
                    return (value if value else process_word(word, env)), end + 1
                return (process_word(word, env) if value else ""), end + 1
        return env.get(body, ""), end + 1
    j = i + 1
    while j < n and (text[j].isalnum() or text[j] == "_"):
        j += 1
    if j == i + 1:
        return "$", j  # a lone dollar is literal
    return env.get(text[i + 1 : j], ""), j
