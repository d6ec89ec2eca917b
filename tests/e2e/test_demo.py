"""`pouw demo` in its short form: the network plays and its books match the contracts."""

from click.testing import CliRunner

from oracle.cli.main import cli
from oracle.client.report import draw_report, from_ape
from oracle.sim.demo import run_demo


def test_demo__two_epochs__books_match_contracts(project, chain, accounts, tmp_path):
    result = run_demo(project, chain, accounts, "ethereum:local:test", epochs=2)
    assert result.problems == []
    # alice's own-data job was paid and its fetched result equals A @ B (else a problem).
    assert result.own_job is not None and result.market.job(result.own_job).status == 2
    # alice's llm job (the default model: `make setup` fetched it) was paid, and the verified
    # completion read back from the job store continues the prompt with the right answer.
    assert result.llm_job is not None and result.market.job(result.llm_job).status == 2
    assert result.completion is not None and result.completion.startswith(" Paris"), result
    data = from_ape(result.market, chain)
    assert sum(units for _, _, units in data.work) == sum(w.units for w in result.workers)
    assert len(data.jobs) == sum(r.posted for r in result.requesters)
    draw_report(data, str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
    fast, medium, cheater = result.workers
    assert cheater.slashed >= 1 and fast.slashed == medium.slashed == 0
    assert sum(r.refunded for r in result.requesters) == 4  # the oversized job, twice each
    token_supply = sum(w.minted for w in result.workers)
    assert 0 < token_supply <= 2 * 1_000 * 10**18  # two epochs of the local schedule
    # Work shares are emission shares: the fastest worker did the most and earned the most.
    assert fast.units == max(w.units for w in result.workers)
    assert fast.minted == max(w.minted for w in result.workers)


def test_demo_cli__live_network__refused_before_connecting():
    out = CliRunner().invoke(cli, ["demo", "--network", "ethereum:sepolia:node"])
    assert out.exit_code == 2
    assert "use a local network" in out.output


def test_demo_cli__bad_epochs__refused():
    out = CliRunner().invoke(cli, ["demo", "--epochs", "0"])
    assert out.exit_code == 2
    assert "--epochs" in out.output


def test_demo_cli__on_anvil__starts_node_plays_and_passes(tmp_path):
    """`pouw demo --network ethereum:local:foundry`: ape-foundry starts anvil and stops it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pouw = Path(sys.executable).with_name("pouw")
    env = {**os.environ, "PATH": f"{root / 'node_modules' / '.bin'}:{os.environ['PATH']}"}
    out = subprocess.run(
        [
            str(pouw),
            "demo",
            "--network",
            "ethereum:local:foundry",
            "--epochs",
            "1",
            "--report",
            str(tmp_path / "r.png"),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "demo OK" in out.stdout
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
