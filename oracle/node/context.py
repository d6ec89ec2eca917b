"""What the oracle node's collaborators share: configuration, chain, key, state, counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
from eth_account.signers.local import LocalAccount

from oracle.chain.client import Chain
from oracle.infra.metrics import Metrics
from oracle.node.db import OracleDB

if TYPE_CHECKING:  # service.py composes the collaborators that import this module
    from oracle.node.service import OracleConfig

__all__ = ["NodeContext"]


@dataclass
class NodeContext:
    """The node's shared state, handed to each collaborator; ``cfg`` is the node's own
    (mutable) config object, read at use."""

    cfg: OracleConfig
    chain: Chain
    account: LocalAccount
    db: OracleDB
    metrics: Metrics
    #: One HTTP session for peers and workers (keep-alive connections).
    http: requests.Session
    #: The market's oracle set, by ascending address, and this node's index in it.
    oracles: list[str]
    index: int
    threshold: int
    reveal_window: int
    #: Seconds after a job's deadline reserved for settlement (the market's ``refund_grace``).
    refund_grace: int
    #: SIGKILL this process if the config names the point (crash tests).
    kill: Callable[[str], None]
