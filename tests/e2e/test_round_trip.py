"""The `pouw demo` / `ape run simulate` round trip, on the embedded chain, with its checks."""

from oracle.sim.simulate import check_round_trip, run_round_trip


def test_round_trip__honest_paid_cheater_slashed_reward_exact(project, chain, accounts):
    honest, cheater = str(accounts[2].address), str(accounts[3].address)
    out = run_round_trip(project, chain, accounts, "ethereum:local:test")
    assert check_round_trip(out, honest, cheater) == []
    assert len(out.jobs) == 3 and set(out.settled.values()) == {honest}
    assert out.slashed == [(out.jobs[0], cheater)]
    assert out.minted == out.expected_reward > 0


def test_check_round_trip__flags_a_wrong_outcome():
    from oracle.sim.simulate import RoundTrip

    out = RoundTrip(
        jobs=[1, 2],
        settled={1: "0xh", 2: "0xc"},
        slashed=[],
        minted=5,
        expected_reward=6,
        escrow_withdrawn=0,
    )
    problems = check_round_trip(out, "0xh", "0xc")
    assert len(problems) == 4
