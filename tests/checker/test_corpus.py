"""Every registered checker over every history in tests/histories/ (see its README).

A checker's own histories must get their verdict: `valid/<checker>/` True, `unknown/<checker>/`
"unknown", `invalid/<checker>/` False with the anomaly kind that starts the file name. Other
checkers' histories must only get some verdict without crashing. The total-order corpus is
also held to what tests/helpers/total_order_corpus.py writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import total_order_corpus
from tests.helpers.history_builder import load_jsonl
from tobtest.checker import CHECKERS, checker_by_name
from tobtest.checker.total_order import ANOMALY_KINDS, check

ROOT = Path(__file__).resolve().parent.parent / "histories"
VERDICTS = {"valid": True, "invalid": False, "unknown": "unknown"}
CORPUS = sorted(p for folder in VERDICTS for p in (ROOT / folder).rglob("*.jsonl"))


def names_kind(stem: str, kind: str) -> bool:
    """A file named `<kind>` or `<kind>-<detail>` (so "G1" does not name "G1c-...")."""
    return stem == kind or stem.startswith(kind + "-")


@pytest.mark.parametrize("checker", sorted(CHECKERS))
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_checker_on_corpus_history(checker, path):
    folder, owner = path.relative_to(ROOT).parts[:2]
    result = checker_by_name(checker)(load_jsonl(path))
    if owner != checker:
        assert result["valid"] in (True, False, "unknown")
        return
    assert result["valid"] == VERDICTS[folder], result
    if folder == "invalid":
        kinds = result.get("anomaly_types", [])
        assert any(names_kind(path.stem, kind) for kind in kinds), (path.stem, kinds)


def test_the_corpus_is_there():
    assert len(CORPUS) >= 20


TOTAL_ORDER = {rel: h for rel, h in total_order_corpus.histories().items()}


def test_committed_total_order_corpus_is_what_the_generator_writes():
    committed = {
        p.relative_to(ROOT)
        for folder in VERDICTS
        for p in (ROOT / folder / total_order_corpus.CHECKER).glob("*.jsonl")
    }
    assert committed == set(TOTAL_ORDER), "rerun: python -m tests.helpers.total_order_corpus"
    for rel, h in TOTAL_ORDER.items():
        expected = "".join(op.to_json() + "\n" for op in h.ops)
        assert (ROOT / rel).read_text() == expected, f"{rel} differs from its generator"


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_every_total_order_kind_has_a_history_that_shows_it(kind):
    folder = "unknown" if kind == "malformed" else "invalid"
    assert any(rel.parts[0] == folder and names_kind(rel.stem, kind) for rel in TOTAL_ORDER), (
        f"no {folder} history for {kind}"
    )


@pytest.mark.parametrize(
    ("invalid", "near_miss", "build"),
    total_order_corpus.PAIRS,
    ids=[invalid for invalid, _, _ in total_order_corpus.PAIRS],
)
def test_each_invalid_history_shows_only_its_kind_and_its_near_miss_passes(
    invalid, near_miss, build
):
    kinds = check(build(True).ops)["anomaly_types"]
    assert len(kinds) == 1 and names_kind(invalid, kinds[0]), kinds
    assert check(build(False).ops)["valid"] is True
