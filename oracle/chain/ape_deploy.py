"""Deploying and wiring the contracts through Ape (used by `ape run deploy` and `pouw`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oracle.chain.deployments import Deployment, create_address
from oracle.protocol.emission import schedule_total
from oracle.protocol.params import ProtocolParams


def deploy_protocol(
    project: Any,
    sender: Any,
    oracles: Sequence[str],
    threshold: int,
    params: ProtocolParams,
    network: str,
    chain_id: int,
) -> tuple[Any, Any, Deployment]:
    """Deploy WorkToken, OracleSet, Disputes and JobMarket, make the market the only minter,
    renounce the token, and bond each oracle with ``params.oracle_bond`` (paid by the deployer).

    After this the token has no owner and exactly one minter (the market), so no one can
    ever mint outside the emission schedule. Returns (token, market, record).
    """
    if not oracles:
        raise ValueError("at least one oracle address is needed")
    if not 1 <= threshold <= len(oracles):
        raise ValueError(f"threshold must be in [1, {len(oracles)}], got {threshold}")
    token = project.WorkToken.deploy(
        "pouw Work",
        "WORK",
        schedule_total(params.initial_emission, params.halving_epochs),
        sender=sender,
    )
    # The set and the dispute contract are made for the market the third transaction from
    # here creates; the market checks both.
    market_address = create_address(str(sender.address), sender.nonce + 2)
    oracle_set = project.OracleSet.deploy(
        market_address,
        list(oracles),
        threshold,
        params.oracle_bond,
        sender=sender,
    )
    disputes = project.Disputes.deploy(market_address, sender=sender)
    market = project.JobMarket.deploy(
        token,
        params.epoch_length,
        params.initial_emission,
        params.halving_epochs,
        oracle_set,
        disputes,
        params.min_bond,
        params.unbonding_delay,
        params.reveal_window,
        params.refund_grace,
        params.max_horizon,
        params.challenge_window,
        sender=sender,
    )
    token.set_minter(market, True, sender=sender)
    for oracle in oracles:
        oracle_set.bond(oracle, sender=sender, value=params.oracle_bond)
    token.renounce_ownership(sender=sender)
    record = Deployment(
        network=network,
        chain_id=chain_id,
        token=str(token.address),
        market=str(market.address),
        block=int(market.creation_metadata.block) if market.creation_metadata else 0,
        deployer=str(sender.address),
        oracles=[str(o) for o in oracle_set.oracles()],
        threshold=threshold,
        params=params.as_dict(),
        oracle_set=str(oracle_set.address),
        disputes=str(disputes.address),
    )
    return token, market, record
