"""`pouw` input handling, chain-free: every command has --help, and bad input is one line
(``error: ...`` or click's usage error) with a non-zero exit, before any chain is touched."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from oracle.cli.main import cli
from oracle.cli.options import Amount, parse_amount

COMMANDS = [
    [],
    ["deploy"],
    ["job"],
    ["job", "create"],
    ["job", "show"],
    ["job", "refund"],
    ["job", "cancel"],
    ["job", "wait"],
    ["withdraw"],
    ["status"],
    ["audit"],
    ["dispute"],
    ["watch"],
    ["node"],
    ["store", "put"],
    ["oracle", "run"],
    ["worker", "run"],
    ["report"],
    ["demo"],
]
# Anvil's test account 5: the first dev oracle.
ANVIL_5 = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
# A port nothing listens on: commands that get past input checks fail to connect (exit 2).
DEAD_RPC = ["--rpc", "http://127.0.0.1:9"]


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    """(path, command) for every leaf command under ``group``."""
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


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
                "4,3",
                "--price",
                "1",
                "--keccak-inputs",
            ],
            "--keccak-inputs applies to --kind matmul only",
        ),
        (
            [
                "job",
                "create",
                "--spec-store",
                "s",
                "--a",
                "A.npy",
                "--b",
                "B.npy",
                "--price",
                "1",
                "--keccak-inputs",
            ],
            "--a and --b cannot be combined with --keccak-inputs",
        ),
        (
            ["job", "create", "--spec-store", "s", "--n", "100000", "--price", "1"],
            "--n: must be in",
        ),
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
        (
            ["audit", "1", "--spec-store", "s", "--result-file", "r", "--worker-url", "http://x"],
            "at most one result source",
        ),
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
    assert parse_amount(text) == value
    assert Amount().convert(text, None, None) == value


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


# -- one source for each shared parser, option and constant ----------------------------------


@pytest.mark.parametrize(
    "text,value",
    [
        ("1.5eth", 3 * 10**18 // 2),
        ("1.5 Ether", 3 * 10**18 // 2),
        ("10gwei", 10 * 10**9),
        ("0.5gwei", 5 * 10**8),
        ("123456789012345678901234567890", 123456789012345678901234567890),  # > 28 digits
        ("12345678901.123456789012345678ether", 12345678901123456789012345678),
        (str(2**256 - 1), 2**256 - 1),
        ("0", 0),
        (42, 42),
    ],
)
def test_parse_amount__accepts_wei_and_units(text, value):
    assert parse_amount(text) == value


@pytest.mark.parametrize(
    "text,message",
    [
        ("lots", "is not an amount"),
        ("eth", "is not an amount"),
        ("1.5", "is not a whole, non-negative number of base units"),
        ("0.5wei", "is not a whole, non-negative number of base units"),
        ("1e-19ether", "is not a whole, non-negative number of base units"),
        ("1.0000000000000000000000000001ether", "is not a whole, non-negative number"),
        ("-1", "is not a whole, non-negative number of base units"),
        ("inf", "is not a whole, non-negative number of base units"),
        ("nan", "is not a whole, non-negative number of base units"),
    ],
)
def test_parse_amount__bad_input_is_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_amount(text)
    with pytest.raises(click.BadParameter, match=message):
        Amount().convert(text, None, None)


def test_amount__every_amount_option_uses_the_one_parser():
    """--price, --amount (job create) and --initial-emission, --min-bond (deploy)."""
    found = {
        (" ".join(path), p.name)
        for path, cmd in _commands(cli)
        for p in cmd.params
        if isinstance(p.type, Amount)
    }
    assert found == {
        ("job create", "price"),
        ("job create", "amount"),
        ("deploy", "initial_emission"),
        ("deploy", "min_bond"),
    }
    code, out = _run(["job", "create", "--spec-store", "s", "--n", "8", "--price", "x"])
    assert code == 2 and "'x' is not an amount" in out


def test_parse_address__checksums_and_rejects_with_the_flag():
    from oracle.cli.options import parse_address
    from oracle.exceptions import ConfigError

    lower = ANVIL_5.lower()
    assert parse_address(lower, "--oracle") == ANVIL_5
    with pytest.raises(ConfigError, match=r"^--worker '0x12' is not an address$"):
        parse_address("0x12", "--worker")


def test_parse_asset__eth_or_an_erc20_address():
    from oracle.chain.client import ZERO_ADDRESS
    from oracle.cli.options import parse_asset
    from oracle.exceptions import ConfigError

    assert parse_asset("ETH") == parse_asset("eth") == ZERO_ADDRESS
    assert parse_asset(ANVIL_5.lower()) == ANVIL_5
    with pytest.raises(ConfigError, match="--asset must be ETH or an ERC-20 address, got 'USD'"):
        parse_asset("USD")


def test_withdraw__bad_asset_is_rejected_like_job_create(key):
    code, out = _run(["withdraw", "--keyfile", key, "--asset", "USD"])
    assert code == 2 and "--asset must be ETH or an ERC-20 address" in out


def test_kind__choices_are_the_registrys():
    from oracle.compute.kinds import KINDS

    kinds = {
        " ".join(path): list(p.type.choices)
        for path, cmd in _commands(cli)
        for p in cmd.params
        if p.name in ("kind", "kinds")
    }
    assert kinds == {"job create": list(KINDS), "worker run": list(KINDS)}
    code, out = _run(["worker", "run", "--help"])
    assert code == 0 and f"--kind [{'|'.join(KINDS)}]" in out
    code, out = _run(["job", "create", "--kind", "conv", "--spec-store", "s"])
    assert code == 2 and "'conv' is not one of" in out


def test_keyfile__one_option_required_where_the_command_always_signs():
    keyfiles = {
        " ".join(path): p for path, cmd in _commands(cli) for p in cmd.params if p.name == "keyfile"
    }
    assert set(keyfiles) == {
        "deploy",
        "dispute",
        "job create",
        "job refund",
        "job cancel",
        "oracle run",
        "withdraw",
        "worker run",
        "watch",
    }
    # deploy can sign with --dev; dispute and watch without a key only say what they found
    assert {k for k, p in keyfiles.items() if not p.required} == {"deploy", "dispute", "watch"}
    assert len({p.help for p in keyfiles.values()}) == 1
    code, out = _run(["job", "refund", "1"])
    assert code == 2 and "Missing option '--keyfile'" in out


def test_dev_oracles__pouw_deploy_and_ape_run_deploy_pick_the_same_set():
    """`pouw deploy --dev` and `ape run deploy` on a local chain, both without --oracle:
    anvil's accounts 5-7 (the keys the README's walk-through runs oracles with), 2 of 3."""
    from oracle.chain.anvil import dev_oracles, test_accounts
    from oracle.cli.deployer import oracle_set as pouw_oracle_set
    from scripts.deploy import oracle_set as ape_oracle_set

    expected = tuple(a.address for a in test_accounts(8)[5:8])
    assert tuple(a.address for a in dev_oracles()) == expected
    assert expected[0] == ANVIL_5
    assert pouw_oracle_set((), None, dev=True) == (expected, 2)
    assert ape_oracle_set((), None, local=True) == (expected, 2)


def test_dev_oracles__given_oracles_are_kept_by_both_entry_points():
    from oracle.cli.deployer import oracle_set as pouw_oracle_set
    from oracle.exceptions import ConfigError
    from scripts.deploy import oracle_set as ape_oracle_set

    assert pouw_oracle_set((ANVIL_5,), None, dev=True) == ((ANVIL_5,), 1)
    assert ape_oracle_set((ANVIL_5,), None, local=True) == ((ANVIL_5,), 1)
    with pytest.raises(ConfigError, match="at least one --oracle"):
        pouw_oracle_set((), None, dev=False)
    with pytest.raises(click.UsageError, match="--oracle is required on a live network"):
        ape_oracle_set((), None, local=False)


def test_python_dash_m__oracle_cli_and_oracle_cli_main_both_run_pouw():
    import subprocess
    import sys

    for module in ("oracle.cli", "oracle.cli.main"):
        out = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True
        )
        assert out.stdout.startswith("Usage: ") and "worker" in out.stdout, module
        assert out.stderr == "", module


def test_job_create__size_out_of_range__names_the_flag_typed(key: str) -> None:
    """``--n 70000`` is reported as ``--n`` (it became spec.m, n and k), ``--m`` as ``--m``."""
    base = ["job", "create", "--keyfile", key, "--spec-store", "x", "--price", "1", *DEAD_RPC]
    code, out = _run([*base, "--kind", "matmul", "--n", "70000"])
    assert code == 2 and "error: --n: must be in [1, 65536], got 70000" in out, out
    code, out = _run([*base, "--kind", "matmul", "--n", "8", "--m", "70000"])
    assert code == 2 and "error: --m: must be in [1, 65536], got 70000" in out, out


def test_when__utc_and_relative() -> None:
    from oracle.cli.requester import when

    assert when(1_800_000_000, 1_800_000_000 - 720) == "2027-01-15 08:00:00 UTC, in 12 min"
    assert when(1_800_000_000, 1_800_000_000 + 30) == "2027-01-15 08:00:00 UTC, 30 s ago"
    assert when(1_800_000_000, 1_800_000_000 - 3 * 86_400).endswith("in 3.0 days")
