"""Deploying pouw with web3.py and the committed bytecode (``pouw deploy``, e2e tests).

Does what :func:`oracle.chain.ape_deploy.deploy_protocol` does through Ape — deploy WorkToken with a
cap equal to the emission schedule, deploy the OracleSet (for the market's address) and
JobMarket, make the market the only minter, renounce the token's ownership, bond each oracle
with ``oracle_bond`` — from a local key, and returns the deployment record.
A reverted or missing transaction raises :class:`~oracle.exceptions.ChainError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.types import TxParams

from oracle.chain.client import artifact
from oracle.chain.deployments import Deployment, create_address
from oracle.exceptions import ChainError
from oracle.protocol.emission import schedule_total
from oracle.protocol.params import ProtocolParams

__all__ = ["deploy_with_web3"]


def _send(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> Any:
    tx.setdefault("from", account.address)
    tx["nonce"] = w3.eth.get_transaction_count(account.address, "pending")
    tx["chainId"] = w3.eth.chain_id
    tx.setdefault("gas", int(w3.eth.estimate_gas(cast(TxParams, tx)) * 1.2))
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    tx["maxPriorityFeePerGas"] = 10**9
    tx["maxFeePerGas"] = 2 * base + 10**9
    signed = account.sign_transaction(tx)
    w3.eth.send_raw_transaction(signed.raw_transaction)
    rcpt = w3.eth.wait_for_transaction_receipt(signed.hash, timeout=30)
    if rcpt["status"] != 1:
        raise ChainError(f"deployment transaction 0x{bytes(signed.hash).hex()} reverted")
    return rcpt


def deploy_with_web3(
    w3: Web3,
    account: LocalAccount,
    oracles: Sequence[str],
    threshold: int,
    params: ProtocolParams,
    network: str,
) -> Deployment:
    """Deploy and wire pouw; returns the record for ``deployments/<network>.json``."""
    if not oracles:
        raise ValueError("at least one oracle address is needed")
    if not 1 <= threshold <= len(oracles):
        raise ValueError(f"threshold must be in [1, {len(oracles)}], got {threshold}")
    oracles = sorted((to_checksum_address(o) for o in oracles), key=lambda a: int(a, 16))
    tok_art, mkt_art = artifact("WorkToken"), artifact("JobMarket")
    set_art, dis_art = artifact("OracleSet"), artifact("Disputes")
    token_f = w3.eth.contract(abi=tok_art["abi"], bytecode=tok_art["bytecode"])
    cap = schedule_total(params.initial_emission, params.halving_epochs)
    rcpt = _send(
        w3,
        account,
        token_f.constructor("pouw Work", "WORK", cap).build_transaction(
            {"from": account.address, "gas": 5_000_000}
        ),
    )
    token_addr = rcpt["contractAddress"]
    # The set and the dispute contract are made for the market the third transaction from
    # here creates; the market checks both.
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    market_address = create_address(account.address, nonce + 2)
    set_f = w3.eth.contract(abi=set_art["abi"], bytecode=set_art["bytecode"])
    rcpt = _send(
        w3,
        account,
        set_f.constructor(
            market_address, list(oracles), threshold, params.oracle_bond
        ).build_transaction({"from": account.address, "gas": 5_000_000}),
    )
    set_addr = rcpt["contractAddress"]
    dis_f = w3.eth.contract(abi=dis_art["abi"], bytecode=dis_art["bytecode"])
    rcpt = _send(
        w3,
        account,
        dis_f.constructor(market_address).build_transaction(
            {"from": account.address, "gas": 8_000_000}
        ),
    )
    disputes_addr = rcpt["contractAddress"]
    market_f = w3.eth.contract(abi=mkt_art["abi"], bytecode=mkt_art["bytecode"])
    rcpt = _send(
        w3,
        account,
        market_f.constructor(
            token_addr,
            params.epoch_length,
            params.initial_emission,
            params.halving_epochs,
            set_addr,
            disputes_addr,
            params.min_bond,
            params.unbonding_delay,
            params.reveal_window,
            params.refund_grace,
            params.max_horizon,
            params.challenge_window,
        ).build_transaction({"from": account.address, "gas": 15_000_000}),
    )
    market_addr, block = rcpt["contractAddress"], int(rcpt["blockNumber"])
    token = w3.eth.contract(address=token_addr, abi=tok_art["abi"])
    _send(
        w3,
        account,
        token.functions.set_minter(market_addr, True).build_transaction({"from": account.address}),
    )
    _send(
        w3,
        account,
        token.functions.renounce_ownership().build_transaction({"from": account.address}),
    )
    oracle_set = w3.eth.contract(address=set_addr, abi=set_art["abi"])
    for oracle in oracles:
        _send(
            w3,
            account,
            oracle_set.functions.bond(oracle).build_transaction(
                {"from": account.address, "value": params.oracle_bond}
            ),
        )
    return Deployment(
        network=network,
        chain_id=int(w3.eth.chain_id),
        token=str(token_addr),
        market=str(market_addr),
        block=block,
        deployer=account.address,
        oracles=list(oracles),
        threshold=threshold,
        params=params.as_dict(),
        oracle_set=str(set_addr),
        disputes=str(disputes_addr),
    )
