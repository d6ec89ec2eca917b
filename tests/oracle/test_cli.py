"""`pouw` input handling, chain-free: every command has --help, and bad input is one line
(``error: ...`` or click's usage error) with a non-zero exit, before any chain is touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oracle.cli.main import _Amount, cli

COMMANDS = [
    [],
    ["deploy"],
    ["job"],
    ["job", "create"],
    ["job", "show"],
    ["job", "refund"],
    ["withdraw"],
    ["status"],
    ["audit"],
    ["node"],
    ["oracle", "run"],
    ["worker", "run"],
    ["report"],
    ["demo"],
]
# A port nothing listens on: commands that get past input checks fail to connect (exit 2).
DEAD_RPC = ["--rpc", "http://127.0.0.1:9"]


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner(mix_stderr=False).invoke(cli, args)
    return result.exit_code, (result.stderr + result.stdout).strip()


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "pouw")
def test_help__every_command(cmd):
    code, out = _run([*cmd, "--help"])
    assert code == 0 and "Usage: " in out


@pytest.fixture
def key(tmp_path: Path) -> str:
    path = tmp_path / "k.key"
    path.write_text("0x" + "11" * 32)
    return str(path)


@pytest.mark.parametrize(
    "args,message",
    [
        (["job", "create", "--spec-store", "s", "--n", "8"], "exactly one of --price"),
        (
            ["job", "create", "--spec-store", "s", "--n", "8", "--price", "1", "--amount", "1"],
            "exactly one of --price",
        ),
        (["job", "create", "--spec-store", "s", "--price", "1"], "matmul needs --n"),
        (
            ["job", "create", "--spec-store", "s", "--kind", "mlp", "--price", "1"],
            "mlp needs --batch and --dims",
        ),
        (
            [
                "job",
                "create",
                "--spec-store",
                "s",
                "--kind",
                "mlp",
                "--batch",
                "2",
                "--dims",
                "4,x",
                "--price",
                "1",
            ],
            "--dims must be comma-separated",
        ),
        (
            ["job", "create", "--spec-store", "s", "--n", "8", "--price", "1", "--asset", "USD"],
            "--asset must be ETH or an ERC-20 address",
        ),
        (
            ["job", "create", "--spec-store", "s", "--n", "8", "--price", "1", "--openings", "2"],
            "--openings applies to --mode sampled",
        ),
        (["job", "create", "--spec-store", "s", "--n", "100000", "--price", "1"], "spec.m"),
        (
            [
                "job",
                "create",
                "--spec-store",
                "s",
                "--n",
                "8",
                "--price",
                "1",
                "--mode",
                "sampled",
                "--openings",
                "9",
            ],
            "spec.verify.openings",
        ),
        (
            ["job", "create", "--spec-store", "s", "--spec-file", "missing.json", "--price", "1"],
            "cannot read spec file",
        ),
        (
            [
                "job",
                "create",
                "--spec-store",
                "s",
                "--spec-file",
                "x.json",
                "--n",
                "8",
                "--price",
                "1",
            ],
            "--spec-file cannot be combined with --n",
        ),
        (["audit", "1", "--spec-store", "s"], "exactly one result source"),
        (["audit", "1", "--spec-store", "s", "--blob", "ab"], "--blob needs at least one"),
        (["audit", "1", "--spec-store", "s", "--worker-url", "ftp://x"], "must be an http(s) URL"),
        (
            ["audit", "1", "--spec-store", "s", "--result-file", "r", "--worker", "0x12"],
            "is not an address",
        ),
        (["deploy", *DEAD_RPC, "--oracle", "nope"], "is not an address"),
        (["deploy", "--network", "sepolia", "--dev"], "network must look like"),
        (["deploy", *DEAD_RPC, "--dev"], "no node answers"),
        (["status", "--deployments", "/nonexistent"], "no pouw deployment recorded"),
        (["job", "show", "1", "--deployments", "/nonexistent"], "no pouw deployment recorded"),
    ],
)
def test_bad_input__one_line_error_exit_2(args, message, key, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.json").write_text("{}")
    if args[:2] == ["job", "create"]:
        args = [*args, "--keyfile", key]
    code, out = _run(args)
    assert code == 2, out
    assert message in out
    assert len(out.splitlines()) <= 3  # click usage errors add a "Usage:"/"Try" line


def test_bad_input__pouw_errors_are_exactly_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = _run(["status", "--deployments", "nowhere"])
    assert code == 2 and out.startswith("error: ") and len(out.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["job", "show", "-1"],
        ["job", "create", "--spec-store", "s", "--n", "0", "--price", "1"],
        ["job", "create", "--spec-store", "s", "--n", "8", "--price", "0.5wei"],
        ["job", "create", "--spec-store", "s", "--n", "8", "--price", "lots"],
        ["node", "--port", "70000"],
        ["audit", "x", "--spec-store", "s"],
    ],
)
def test_bad_input__usage_errors_exit_2(args, key):
    if args[:2] == ["job", "create"]:
        args = [*args, "--keyfile", key]
    code, out = _run(args)
    assert code == 2 and "Error: " in out


@pytest.mark.parametrize(
    "text,value",
    [
        ("10000", 10_000),
        ("1e16", 10**16),
        ("0.01ether", 10**16),
        ("5 gwei", 5 * 10**9),
        ("7wei", 7),
        ("2ETH", 2 * 10**18),
    ],
)
def test_amount__units(text, value):
    assert _Amount().convert(text, None, None) == value


def test_job_create__spec_file_is_validated(tmp_path, key):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"version": 1, "kind": "matmul", "dtype": "int4"}))
    code, out = _run(
        [
            "job",
            "create",
            "--spec-store",
            str(tmp_path),
            "--spec-file",
            str(spec),
            "--amount",
            "1",
            "--keyfile",
            key,
        ]
    )
    assert code == 2 and out.startswith("error: spec.")


def test_store_serve__help_names_the_route():
    from click.testing import CliRunner

    from oracle.cli.main import cli

    out = CliRunner().invoke(cli, ["store", "serve", "--help"])
    assert out.exit_code == 0
    assert "/blobs/<keccak hash>" in out.output


def test_node__write_dev_keys__writes_anvils_well_known_keys(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import oracle.chain.anvil
    from oracle.chain.keys import load_account
    from oracle.cli.main import cli

    class Stopped(Exception):
        pass

    def no_anvil(*_a, **_k):
        raise Stopped  # keys are written before the node starts; do not start one here

    monkeypatch.setattr(oracle.chain.anvil, "start_anvil", no_anvil)
    out = CliRunner().invoke(cli, ["node", "--write-dev-keys", str(tmp_path)])
    assert isinstance(out.exception, Stopped)
    acct = load_account(tmp_path / "account1.key")
    assert acct.address == oracle.chain.anvil.test_accounts(2)[1].address
    assert (tmp_path / "account1.key").stat().st_mode & 0o777 == 0o600
