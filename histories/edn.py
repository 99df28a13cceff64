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

import json
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
    fast = _flat_lines(text, keyword)
    if fast is not None:
        yield from fast
        return
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


# The fast path: a history of one op map a line, each map of keyword keys and values that
# are strings without escapes, atoms, or vectors of those nested up to three deep (what
# Jepsen writes). Each line is matched whole by one regex and split into its pairs by
# another, both in C; the atoms, which repeat (`:invoke`, `nil`, small numbers), are
# converted once each. A line of any other shape sends the whole text to the full reader.
# Every quantifier is possessive, so that a line that does not match fails in linear time.
_STR = r'"[^"\\\n]*+"'
_ATOM = r"[^\s,\[\](){}\"#;\\]++"
_SCALAR = rf"(?:{_STR}|{_ATOM})"
_SEP = r"[ ,]*+"
_VEC1 = rf"\[{_SEP}(?:{_SCALAR}{_SEP})*+\]"
_VEC2 = rf"\[{_SEP}(?:(?:{_SCALAR}|{_VEC1}){_SEP})*+\]"
_VEC3 = rf"\[{_SEP}(?:(?:{_SCALAR}|{_VEC2}){_SEP})*+\]"
_PAIR = rf":([^\s,\[\](){{}}\"#;\\]++)[ ,]++({_SCALAR}|{_VEC3})"
_FLAT_MAP = re.compile(rf"[ ,]*+\{{{_SEP}(?:{_PAIR}{_SEP})*+\}}[ ,]*+")
_PAIRS = re.compile(_PAIR)
_NOT_JSON_SAFE = re.compile(r"[#;\\()]|null|\}[ ,]*+\{")
_KEY_FIND = re.compile(r"(?:\{|, ):([^\s,\[\](){}\"#;\\]++) ")
_VALUE_KEYWORD = re.compile(r"(?<=[\[ :]):([^\s,\[\](){}\"#;\\]++)")
_KEYWORD = re.compile(r"(?<![^\[ ]):([^ \[\]]+)")
_NIL = re.compile(r"(?<![^\[ ])nil(?![^\] ])")
_VEC_TOKENS = re.compile(rf"[\[\]]|{_STR}|{_ATOM}")


def _flat_lines(text: str, keyword: Callable[[str], Any]) -> list[tuple[Any, int]] | None:
    """The elements of a history of one flat op map a line (see above), or None."""
    if keyword is str and '"' not in text:
        as_json = _flat_lines_as_json(text)
        if as_json is not None:
            return as_json
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None
    last = max(i for i, line in enumerate(lines) if line.strip())
    if lines[first].lstrip().startswith("["):  # one vector of maps, as Knossos writes
        if not lines[last].rstrip().endswith("]"):
            return None
        lines[first] = lines[first].lstrip()[1:]
        lines[last] = lines[last].rstrip()[:-1]
    atoms: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    out: list[tuple[Any, int]] = []
    try:
        for number in range(first, last + 1):
            line = lines[number]
            if not _FLAT_MAP.fullmatch(line):
                if line.strip(" ,\t\r"):
                    return None
                continue
            op: dict[Any, Any] = {}
            for key_text, value_text in _PAIRS.findall(line):
                key = keys.get(key_text)
                if key is None:
                    key = keys[key_text] = keyword(key_text)
                if value_text[0] == "[":
                    op[key] = _flat_vector(value_text, atoms, keyword)
                else:
                    value = atoms.get(value_text, _END)
                    if value is _END:
                        value = atoms[value_text] = _scalar(value_text, keyword)
                    op[key] = value
            out.append((op, number + 1))
    except EdnError:
        return None  # the full reader says what is wrong, and where
    return out


def _flat_lines_as_json(text: str) -> list[tuple[Any, int]] | None:
    """The same for a text without strings: rewritten as JSON by C-level substitutions
    and read by json's C parser in one call. Every step is checked: the lines must be flat
    maps (one regex), and anything JSON reads otherwise than EDN (a symbol, 42N, +1) makes
    the JSON malformed, which sends the text back to the line-by-line path."""
    lines = text.split("\n")
    numbers = [i for i, line in enumerate(lines) if line.strip(" ,")]
    if not numbers:
        return None
    first, last = numbers[0], numbers[-1]
    if lines[first].lstrip(" ,").startswith("["):
        if not lines[last].rstrip(" ,").endswith("]"):
            return None
        lines[first] = lines[first].lstrip(" ,")[1:]
        lines[last] = lines[last].rstrip(" ,")[:-1]
    body = "\n".join(lines[i] for i in numbers)
    # What JSON would read otherwise than EDN, or not at all: tags, comments, characters,
    # lists, the symbol null; and two maps on one line (each line must be one map).
    if _NOT_JSON_SAFE.search(body):
        return None
    # Keys first: a keyword right after "{" or ", " (how Jepsen writes maps), one distinct
    # key at a time (those of the first line, then any left); then the other keywords
    # become strings and nil null. Substitutions with constant replacements and
    # split-then-join stay in C (3.11 expands a template with groups in Python, once a
    # match). A keyword taken for a key that is not one, or the reverse, a map across
    # lines or anything else EDN reads otherwise leaves the JSON malformed or the count
    # of maps off, and the caller reads the text line by line instead.
    keys: set[str] = set()
    for sample in (body[: body.find("\n")], body):
        for key in set(_KEY_FIND.findall(sample)) - keys:
            body = body.replace("{:" + key + " ", '{"' + key + '":')
            body = body.replace(", :" + key + " ", ' "' + key + '":')
            keys.add(key)
        if len(keys) > 64:
            return None
        if "{:" not in body and ", :" not in body:
            break
    body = '"'.join(_VALUE_KEYWORD.split(body))
    body = body.replace(" nil", " null").replace("[nil", "[null").replace(":nil", ":null")
    body = (
        " ".join(body.replace(",", " ").split())
        .replace("[ ", "[")
        .replace(" ]", "]")
        .replace("{ ", "{")
        .replace(" }", "}")
        .replace(" ", ",")
    )
    try:
        ops = json.loads("[" + body + "]")
    except ValueError:
        return None
    if len(ops) != len(numbers) or not all(isinstance(op, dict) for op in ops):
        return None
    return [(op, number + 1) for op, number in zip(ops, numbers, strict=True)]


def _flat_vector(text: str, atoms: dict[str, Any], keyword: Callable[[str], Any]) -> list[Any]:
    if keyword is str and '"' not in text:
        # Without strings, a vector is JSON once its keywords are quoted, nil is null and
        # items are comma-separated; json's C parser then reads it. A vector holding
        # anything JSON reads otherwise (a symbol, 42N, +1, 007) fails and is read below.
        spaced = " ".join(text.replace(",", " ").split())
        as_json = _NIL.sub(
            "null", _KEYWORD.sub(r'"\1"', spaced.replace("[ ", "[").replace(" ]", "]"))
        )
        try:
            value = json.loads(as_json.replace(" ", ","))
        except ValueError:
            pass
        else:
            if isinstance(value, list):
                return value
    stack: list[list[Any]] = []
    current: list[Any] = []
    for token in _VEC_TOKENS.findall(text):
        if token == "[":
            stack.append(current)
            current = []
        elif token == "]":
            done = current
            current = stack.pop()
            current.append(done)
        else:
            value = atoms.get(token, _END)
            if value is _END:
                value = atoms[token] = _scalar(token, keyword)
            current.append(value)
    return current[0]


def _scalar(text: str, keyword: Callable[[str], Any]) -> Any:
    if text[0] == '"':
        return text[1:-1]  # the fast path takes only strings without escapes
    return _read_atom(text, keyword, 0)


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
        return _read_atom(text, self.keyword, self.line(self.token_start))

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


def _read_atom(text: str, keyword: Callable[[str], Any], line: int) -> Any:
    """An atom's value: nil, a boolean, a keyword, a number, or a symbol (a string)."""
    if text == "nil":
        return None
    if text == "true":
        return True
    if text == "false":
        return False
    if text.startswith(":"):
        if len(text) == 1:
            raise EdnError("empty keyword ':'", line)
        return keyword(text[1:])
    if text[0].isdigit() or (len(text) > 1 and text[0] in "+-" and text[1].isdigit()):
        if _INT.fullmatch(text):
            return int(text.rstrip("N"))
        if _FLOAT.fullmatch(text):
            return float(text.rstrip("M"))
        raise EdnError(f"malformed number {text!r}", line)
    return text  # a symbol


def freeze(value: Any) -> Any:
    """A hashable equal-content version of a read value (lists -> tuples, dicts -> items)."""
    if type(value) is str or type(value) is int:  # most values: no isinstance walk
        return value
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((freeze(k), freeze(v)) for k, v in value.items()), key=repr))
    return value
