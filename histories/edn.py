"""A small EDN reader, enough for Jepsen histories (no external dependency).

    >>> loads('[{:type :invoke, :f :cas, :value [1 2], :process 0}]')
    [{'type': 'invoke', 'f': 'cas', 'value': [1, 2], 'process': 0}]
    >>> [(v, line) for v, line in iter_values('{:a 1}\\n{:a nil}')]
    [({'a': 1}, 1), ({'a': None}, 2)]

Supported: maps, vectors and lists (both become Python lists), sets (frozensets), keywords
(plain strings without the colon, or `Keyword`s with `keyword=Keyword`), symbols (strings),
strings, characters, ints (also `42N`), floats (also `1.5M`), nil, true/false, `;` comments,
`#_` discards and tagged literals. A tagged literal reads as its value with the tag dropped,
which is what a Jepsen record such as `#jepsen.history.Op{:index 0 ...}` needs; pass
`tags={"inst": fn}` to treat a tag otherwise. Collections used as map keys or set elements
are frozen (lists become tuples, dicts become sorted item tuples) so they can be hashed.

Malformed input raises `EdnError` (a ValueError) carrying the line number of the problem.
`edn_format` on PyPI (0.8.0) would read these too, but brings ply, pyRFC3339 and pytz;
Jepsen histories need only this subset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any


class Keyword(str):
    """An EDN keyword kept distinct from strings (it still compares equal to its name)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return ":" + str(self)


class EdnError(ValueError):
    """Malformed EDN; `line` is the 1-based line where the problem was found."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.reason = message
        self.line = line


# One token per match: whitespace and commas and comments are skipped by the `skip` group.
_TOKEN = re.compile(
    r"""
    (?P<skip>(?:[\s,]+|;[^\n]*)+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<open>\#\{|[\[({])
  | (?P<close>[\])}])
  | (?P<discard>\#_)
  | (?P<tag>\#[A-Za-z][^\s,\[\](){}"\#;]*)
  | (?P<char>\\(?:newline|space|tab|return|u[0-9a-fA-F]{4}|.))
  | (?P<atom>[^\s,\[\](){}"\#;\\][^\s,\[\](){}";]*)
    """,
    re.VERBOSE | re.DOTALL,
)
_INT = re.compile(r"[+-]?\d+N?")
_FLOAT = re.compile(r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?M?")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}
_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r"}
_CLOSER = {"[": "]", "(": ")", "{": "}", "#{": "}"}
_END = object()


def loads(text: str, *, keyword: Callable[[str], Any] = str, tags: dict | None = None) -> Any:
    """Reads exactly one EDN value from `text`."""
    values = list(iter_values(text, keyword=keyword, tags=tags))
    if len(values) != 1:
        raise EdnError(
            f"expected one EDN value, found {len(values)}", values[1][1] if values else 1
        )
    return values[0][0]


def iter_values(
    text: str, *, keyword: Callable[[str], Any] = str, tags: dict | None = None
) -> Iterator[tuple[Any, int]]:
    """Yields each top-level value with the line it starts on (for streams of op maps)."""
    yield from _iter_values_from(_Reader(text, keyword, tags or {}))


def iter_elements(
    text: str, *, keyword: Callable[[str], Any] = str, tags: dict | None = None
) -> Iterator[tuple[Any, int]]:
    """Like `iter_values`, but a text holding one vector or list yields that list's elements.

    Both shapes of a Jepsen `history.edn` (one vector of ops, or one op a line) read as a
    stream of ops, each with its own line number.
    """
    reader = _Reader(text, keyword, tags or {})
    token = reader.next_token()
    while token is not None and token[0] == "discard":
        reader.read()
        token = reader.next_token()
    if token is None:
        return
    if token[0] != "open" or token[1] not in ("[", "("):
        yield reader.value(token), reader.line(reader.token_start)
        yield from _iter_values_from(reader)
        return
    opener, start_line = token[1], reader.line(reader.token_start)
    while True:
        token = reader.next_token()
        if token is None:
            raise EdnError(f"{opener!r} opened here is never closed", start_line)
        if token[0] == "close":
            if token[1] != _CLOSER[opener]:
                raise EdnError(f"expected {_CLOSER[opener]!r}, found {token[1]!r}", reader.line())
            break
        if token[0] == "discard":
            reader.read()
            continue
        line = reader.line(reader.token_start)
        yield reader.value(token), line
    rest, line = reader.top()
    if rest is not _END:
        raise EdnError("more forms after the top-level collection", line)


def _iter_values_from(reader: _Reader) -> Iterator[tuple[Any, int]]:
    while True:
        value, line = reader.top()
        if value is _END:
            return
        yield value, line


class _Reader:
    def __init__(self, text: str, keyword: Callable[[str], Any], tags: dict) -> None:
        self.text = text
        self.tokens = _TOKEN.finditer(text)
        self.keyword = keyword
        self.tags = tags
        self.pos = 0
        self.token_start = 0
        # Lines are counted incrementally: a stream of one op per line asks at every value.
        self.counted_pos = 0
        self.counted_lines = 1

    def line(self, pos: int | None = None) -> int:
        pos = self.pos if pos is None else pos
        if pos < self.counted_pos:
            return self.text.count("\n", 0, pos) + 1
        self.counted_lines += self.text.count("\n", self.counted_pos, pos)
        self.counted_pos = pos
        return self.counted_lines

    def next_token(self) -> tuple[str, str] | None:
        for m in self.tokens:
            if m.start() != self.pos:
                self.stray()
            self.pos = m.end()
            kind = m.lastgroup
            if kind != "skip":
                self.token_start = m.start()
                return kind or "", m.group()
        if self.pos != len(self.text):
            self.stray()
        return None

    def stray(self) -> None:
        """The tokenizer skipped a character no token accepts: say what it is."""
        c = self.text[self.pos]
        if c == '"':
            raise EdnError("unterminated string", self.line())
        raise EdnError(f"unexpected character {c!r}", self.line())

    def top(self) -> tuple[Any, int]:
        token = self.next_token()
        while token is not None and token[0] == "discard":
            self.read()
            token = self.next_token()
        if token is None:
            return _END, self.line()
        line = self.line(self.token_start)
        return self.value(token), line

    def read(self) -> Any:
        token = self.next_token()
        if token is None:
            raise EdnError("unexpected end of input", self.line())
        return self.value(token)

    def value(self, token: tuple[str, str]) -> Any:
        kind, text = token
        if kind == "atom":
            return self.atom(text)
        if kind == "string":
            return self.string(text)
        if kind == "open":
            return self.collection(text)
        if kind == "close":
            raise EdnError(f"unmatched {text!r}", self.line(self.token_start))
        if kind == "discard":
            self.read()  # `#_ x y` reads as y: x is discarded
            return self.read()
        if kind == "tag":
            value = self.read()
            handler = self.tags.get(text[1:])
            return handler(value) if handler is not None else value
        if kind == "char":
            name = text[1:]
            if name.startswith("u") and len(name) == 5:
                return chr(int(name[1:], 16))
            return _CHARS.get(name, name)
        raise EdnError(f"unexpected token {text!r}", self.line())

    def atom(self, text: str) -> Any:
        if text == "nil":
            return None
        if text == "true":
            return True
        if text == "false":
            return False
        if text.startswith(":"):
            if len(text) == 1:
                raise EdnError("empty keyword ':'", self.line(self.token_start))
            return self.keyword(text[1:])
        if text[0].isdigit() or (len(text) > 1 and text[0] in "+-" and text[1].isdigit()):
            if _INT.fullmatch(text):
                return int(text.rstrip("N"))
            if _FLOAT.fullmatch(text):
                return float(text.rstrip("M"))
            raise EdnError(f"malformed number {text!r}", self.line(self.token_start))
        return text  # a symbol

    def string(self, text: str) -> str:
        body = text[1:-1]
        if "\\" not in body:
            return body
        out: list[str] = []
        i = 0
        while i < len(body):
            c = body[i]
            if c != "\\":
                out.append(c)
                i += 1
                continue
            esc = body[i + 1]
            if esc == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
            elif esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
            else:
                raise EdnError(f"bad string escape '\\{esc}'", self.line(self.token_start))
        return "".join(out)

    def collection(self, opener: str) -> Any:
        start_line = self.line(self.token_start)
        closer = _CLOSER[opener]
        items: list[Any] = []
        while True:
            token = self.next_token()
            if token is None:
                raise EdnError(f"{opener!r} opened here is never closed", start_line)
            kind, text = token
            if kind == "close":
                if text != closer:
                    raise EdnError(f"expected {closer!r}, found {text!r}", self.line())
                break
            if kind == "discard":
                self.read()
                continue
            items.append(self.value(token))
        if opener == "{":
            if len(items) % 2:
                raise EdnError("map has an odd number of forms", start_line)
            return {freeze(items[i]): items[i + 1] for i in range(0, len(items), 2)}
        if opener == "#{":
            return frozenset(freeze(v) for v in items)
        return items


def freeze(value: Any) -> Any:
    """A hashable equal-content version of a read value (lists -> tuples, dicts -> items)."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((freeze(k), freeze(v)) for k, v in value.items()), key=repr))
    return value
