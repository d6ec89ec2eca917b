"""A requester paying in an allow-listed ERC-20 through the CLI on a real anvil:
`pouw job create --asset` approves and escrows exactly the tokens asked for, `job show` names
the token, a token that is not allow-listed is refused with one line and nothing moves, and
`pouw job refund` credits the tokens back after the deadline, `pouw withdraw` pays them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ape import project

from oracle.chain import deployments
from oracle.chain.client import STATUS_REFUNDED, Chain, TxSender
from tests.e2e.conftest import key_file
from tests.e2e.test_cli_live import pouw


def _deploy_token(chain: Chain, deployer: Any, symbol: str) -> Any:
    ctype = project.MockToken.contract_type
    abi = [a.model_dump(mode="json", by_alias=True) for a in ctype.abi]
    factory = chain.w3.eth.contract(abi=abi, bytecode=ctype.deployment_bytecode.bytecode)
    rcpt = TxSender(chain, deployer).send(
        factory.constructor(f"Mock {symbol}", symbol), "deploy token", gas=3_000_000
    )
    return chain.w3.eth.contract(address=rcpt["contractAddress"], abi=abi)


def test_cli__erc20_job_create_show_refund(anvil, keys, tmp_path: Path, spec_server):
    deps = tmp_path / "deployments"
    common = ["--rpc", anvil.url, "--deployments", deps]
    code, out = pouw(
        "deploy", *common, "--dev", "--oracle", keys["oracles"][0].address, "--threshold", 1
    )
    assert code == 0, out
    chain = Chain(anvil.url, deployments.load("ethereum:local:foundry", deps))
    requester = keys["requester"]
    usd, other = (_deploy_token(chain, keys["deployer"], s) for s in ("mUSD", "OTHER"))
    owner = TxSender(chain, keys["deployer"])
    owner.send(chain.market.functions.set_asset_allowed(usd.address, True), "allow")
    for token in (usd, other):
        owner.send(token.functions.mint(requester.address, 10**9), "mint")
    key = key_file(tmp_path, "requester", requester)
    create = [
        "job",
        "create",
        *common,
        "--keyfile",
        key,
        "--spec-store",
        spec_server.url,
        "--n",
        16,
        "--deadline-in",
        60,
    ]

    code, out = pouw(*create, "--asset", other.address, "--amount", 1_000)
    assert code == 2 and len(out.strip().splitlines()) == 1 and "allow" in out.lower(), out
    assert other.functions.balanceOf(chain.market.address).call() == 0
    assert other.functions.balanceOf(requester.address).call() == 10**9

    code, out = pouw(*create, "--asset", usd.address, "--amount", 1_000, "--count", 2, "--json")
    assert code == 0, out
    posted = json.loads(out)
    assert [p["amount"] for p in posted] == [1_000, 1_000]
    assert usd.functions.balanceOf(chain.market.address).call() == 2_000
    assert usd.functions.balanceOf(requester.address).call() == 10**9 - 2_000
    code, out = pouw("job", "show", posted[0]["job_id"], *common, "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["asset"] == usd.address and shown["status"] == "open"

    job = posted[0]["job_id"]
    code, out = pouw("job", "refund", job, *common, "--keyfile", key)
    assert code == 2 and len(out.strip().splitlines()) == 1, out  # not past its deadline
    assert usd.functions.balanceOf(chain.market.address).call() == 2_000
    anvil.w3.provider.make_request("evm_increaseTime", [3_600])
    anvil.w3.provider.make_request("evm_mine", [])
    code, out = pouw("job", "refund", job, *common, "--keyfile", key)
    assert code == 0 and "refunded: 1,000" in out, out
    assert chain.job_status(job) == STATUS_REFUNDED
    assert chain.call("credited", requester.address, usd.address) == 1_000  # pull payment
    code, out = pouw("withdraw", *common, "--keyfile", key, "--asset", usd.address)
    assert code == 0 and "withdrawn 1,000" in out, out
    assert usd.functions.balanceOf(requester.address).call() == 10**9 - 1_000
    assert usd.functions.balanceOf(chain.market.address).call() == 1_000  # the open job's
    assert chain.call("credited", requester.address, usd.address) == 0
