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
    # Delivering decisions as they arrive diverges once two nodes hear them in different
    # orders; reordering links (link) make that certain rather than likely.
    result = tobtest_cluster.run(
        nemesis="partition,link", time_limit_s=8, nemesis_interval_s=1, seed=3,
        bugs=["deliver-on-arrival"], rate=80,
    )  # fmt: skip
    assert result.valid is False, result.summary()
    assert "reproduce with: tobtest run" in result.summary()


def test_unknown_options_are_refused(tobtest_cluster):
    with pytest.raises(TypeError, match="unknown tobtest option"):
        tobtest_cluster.run(colour="blue")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_multipaxos_with_lease_reads_and_clients_following_the_leader(tobtest_cluster):
    from collections import Counter

    from tobtest.histories.formats import read_history

    result = tobtest_cluster.run(
        protocol="multipaxos", workload="register", read_modes=["lease", "log"],
        nemesis="partition", partition_shapes=["primaries"], time_limit_s=6,
        nemesis_interval_s=2, seed=4, route_to_leader=True,
    )  # fmt: skip
    assert result.valid is True, result.summary()
    history = read_history(result.run_path / "history.jsonl")
    invoked_at = Counter(op.node for op in history if op.type == "invoke" and op.node)
    # Clients follow the leader: one node takes most ops (another after a failover).
    assert invoked_at.most_common(1)[0][1] > 0.5 * sum(invoked_at.values())
    lease_ok = [op for op in history if op.type == "ok" and op.extra.get("read_mode") == "lease"]
    assert lease_ok, "the leader served lease reads"
