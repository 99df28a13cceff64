"""The small EDN reader: each form Jepsen histories use, errors with lines, and a round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tobtest.histories.edn import EdnError, Keyword, iter_elements, iter_values, loads


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("nil", None),
        ("true", True),
        ("false", False),
        ("42", 42),
        ("-7", -7),
        ("42N", 42),
        ("1.5", 1.5),
        ("2.5M", 2.5),
        ("1e3", 1000.0),
        (":invoke", "invoke"),
        (":jepsen.history/op", "jepsen.history/op"),
        ("some-symbol", "some-symbol"),
        ('"a \\"q\\" \\n\\t\\\\ \\u00e9"', 'a "q" \n\t\\ é'),
        ("\\c", "c"),
        ("\\newline", "\n"),
        ("[1 [2 3] ()]", [1, [2, 3], []]),
        ("(1, 2,3)", [1, 2, 3]),
        ("{:a 1, :b [nil]}", {"a": 1, "b": [None]}),
        ("#{1 2}", frozenset({1, 2})),
        ("{[1 2] :pair}", {(1, 2): "pair"}),
        ("#{[1] {:a 1}}", frozenset({(1,), (("a", 1),)})),
        ('#inst "2024-01-01"', "2024-01-01"),
        ("#jepsen.history.Op{:index 0, :f :read}", {"index": 0, "f": "read"}),
        ("[1 #_ 2 3]", [1, 3]),
        ("{:a #_ :gone 1}", {"a": 1}),
        ("; a comment\n[1 ; another\n 2]", [1, 2]),
    ],
)
def test_reads_each_form(text, value):
    assert loads(text) == value


def test_keywords_can_stay_keywords():
    v = loads('[:a "a"]', keyword=Keyword)
    assert isinstance(v[0], Keyword) and not isinstance(v[1], Keyword)
    assert v[0] == "a" and repr(v[0]) == ":a"


def test_tag_handlers_apply():
    assert loads('#uuid "x"', tags={"uuid": lambda s: ("uuid", s)}) == ("uuid", "x")


def test_a_stream_gives_each_value_with_its_line():
    text = "{:a 1}\n\n{:a 2} {:a 3}\n#_ {:gone 1}\n{:a 4}"
    assert list(iter_values(text)) == [({"a": 1}, 1), ({"a": 2}, 3), ({"a": 3}, 3), ({"a": 4}, 5)]


def test_elements_of_one_vector_come_with_their_own_lines():
    text = "; header\n[{:a 1}\n {:a 2}\n\n {:a 3}]\n"
    assert list(iter_elements(text)) == [({"a": 1}, 2), ({"a": 2}, 3), ({"a": 3}, 5)]
    assert list(iter_elements("{:a 1}\n{:a 2}")) == [({"a": 1}, 1), ({"a": 2}, 2)]
    assert list(iter_elements("  ; only a comment\n")) == []


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("[1 2", 1, "never closed"),
        ("\n\n{:a}", 3, "odd number"),
        ('\n"abc', 2, "unterminated string"),
        ("[1 2)", 1, "expected ']'"),
        ("1\n)", 2, "unmatched"),
        (":", 1, "empty keyword"),
        ("\n\n12ab", 3, "malformed number"),
        ("#", 1, "unexpected character"),
        ('"\\q"', 1, "bad string escape"),
    ],
)
def test_malformed_input_says_where_and_why(text, line, reason):
    with pytest.raises(EdnError) as err:
        loads(text)
    assert err.value.line == line
    assert reason in str(err.value)


def test_loads_wants_exactly_one_value():
    with pytest.raises(EdnError, match="expected one EDN value, found 2"):
        loads("1 2")
    with pytest.raises(EdnError, match="more forms after"):
        list(iter_elements("[1] [2]"))


# A writer for the round trip: plain data as Jepsen would print it.
def to_edn(v: object) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list):
        return "[" + " ".join(to_edn(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f":{k} {to_edn(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


keywords = st.from_regex(r"[a-z][a-z0-9\-]{0,8}", fullmatch=True)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keywords, inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_what_an_edn_writer_prints_reads_back_equal(v):
    assert loads(to_edn(v)) == v


ops = st.lists(st.dictionaries(keywords, values, min_size=1, max_size=5), min_size=1, max_size=6)


@given(ops, st.booleans())
def test_a_history_reads_the_same_through_the_one_map_a_line_path_and_the_full_reader(
    maps, as_vector
):
    # iter_elements takes a fast path for one flat map a line; iter_values never does.
    lines = [to_edn(m) for m in maps]
    stream = "\n".join(lines) + "\n"
    text = "[" + "\n ".join(lines) + "]\n" if as_vector else stream
    assert list(iter_elements(text)) == list(iter_values(stream))


def test_the_fast_path_keeps_values_apart_and_keywords_as_asked():
    text = '{:type :invoke, :f :txn, :value [[:append 1 2] [:r 3 nil]], :key "k"}\n' * 2
    (a, line_a), (b, line_b) = iter_elements(text, keyword=Keyword)
    assert (line_a, line_b) == (1, 2)
    assert a == {"type": "invoke", "f": "txn", "value": [["append", 1, 2], ["r", 3, None]],
                 "key": "k"}  # fmt: skip
    assert isinstance(a["type"], Keyword) and not isinstance(a["key"], Keyword)
    a["value"].append("mutated")
    assert b["value"] == [["append", 1, 2], ["r", 3, None]]  # no list shared between ops


def test_a_malformed_line_in_a_flat_history_is_reported_by_the_full_reader():
    with pytest.raises(EdnError, match="line 2: malformed number '1x'"):
        list(iter_elements("{:a 1}\n{:a 1x}\n"))


words = keywords.map(lambda k: ":" + k) | st.sampled_from(["nil", "true", "false", "sym", "42N"])
plain = st.recursive(
    st.integers(-5, 10**12).map(str) | words,
    lambda inner: st.lists(inner, max_size=4).map(lambda items: "[" + " ".join(items) + "]"),
    max_leaves=12,
)
plain_maps = st.lists(st.dictionaries(keywords, plain, min_size=1, max_size=5), min_size=1)


@given(plain_maps, st.booleans())
def test_a_history_without_strings_reads_the_same_through_json_and_the_full_reader(maps, commas):
    # Without strings, iter_elements rewrites the text as JSON: same values, or a fallback.
    sep = ", " if commas else " "
    stream = "".join("{" + sep.join(f":{k} {v}" for k, v in m.items()) + "}\n" for m in maps)
    assert list(iter_elements(stream)) == list(iter_values(stream))
