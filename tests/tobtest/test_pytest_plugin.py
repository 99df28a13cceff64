"""The pytest plugin, used as a user would: the fixture comes from the installed entry point."""

import pytest


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_fault_injection_test_in_a_few_lines(tobtest_cluster):
    result = tobtest_cluster.run(nemesis="partition", time_limit_s=4, nemesis_interval_s=1, seed=2)
    assert result.valid is True, result.summary()
    assert (result.run_path / "history.jsonl").exists()
    assert not tobtest_cluster.leftover_pids()


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_fixture_reports_a_seeded_bug(tobtest_cluster):
    result = tobtest_cluster.run(
        nemesis="partition", time_limit_s=6, nemesis_interval_s=1, seed=3,
        bugs=["deliver-on-arrival"], rate=80,
    )  # fmt: skip
    assert result.valid is False, result.summary()
    assert "reproduce with: tobtest run" in result.summary()


def test_unknown_options_are_refused(tobtest_cluster):
    with pytest.raises(TypeError, match="unknown tobtest option"):
        tobtest_cluster.run(colour="blue")
