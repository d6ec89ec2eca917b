"""Deployment records: one JSON file per network under `deployments/`, read by every client.

`ape run deploy --network ethereum:sepolia:alchemy` writes `deployments/ethereum-sepolia.json`;
the CLI, the worker and the oracle read the same file for the network they are pointed at.
Records of local chains (`ethereum-local.json`) are not committed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_utils import keccak, to_checksum_address

from oracle.exceptions import DeploymentNotFound

DEFAULT_DIR = Path("deployments")


@dataclass
class Deployment:
    """Addresses and parameters of one pouw deployment."""

    network: str
    chain_id: int
    token: str
    market: str
    block: int
    deployer: str
    oracles: list[str]
    threshold: int
    params: dict[str, int]
    assets: dict[str, str] = field(default_factory=dict)
    #: The OracleSet (membership, threshold, oracle bonds); empty in records from before it.
    oracle_set: str = ""
    #: The dispute contract (refutes VALID matmul verdicts); empty in records from before it.
    disputes: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        return cls(**data)


def create_address(sender: str, nonce: int) -> str:
    """The address of the contract ``sender`` creates with transaction ``nonce`` (CREATE):
    the OracleSet and the Disputes contract are deployed for the market's address."""
    raw = keccak(rlp.encode([bytes.fromhex(sender.removeprefix("0x")), nonce]))[12:]
    return to_checksum_address(raw)


def network_key(network_choice: str) -> str:
    """`ethereum:sepolia:alchemy` -> `ethereum-sepolia`: on a live network the provider does
    not matter. Local chains are separate chains per provider: `ethereum-local-foundry`."""
    parts = [p for p in network_choice.split(":") if p]
    if len(parts) < 2:
        raise ValueError(
            f"network must look like ecosystem:network[:provider], got {network_choice!r}"
        )
    if parts[1] == "local":
        return f"{parts[0]}-local-{parts[2] if len(parts) > 2 else 'test'}"
    return f"{parts[0]}-{parts[1]}"


def path_for(network_choice: str, root: Path = DEFAULT_DIR) -> Path:
    return root / f"{network_key(network_choice)}.json"


def save(deployment: Deployment, root: Path = DEFAULT_DIR) -> Path:
    """Write the record atomically (temp file, then rename)."""
    path = path_for(deployment.network, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(deployment.to_json())
    tmp.replace(path)
    return path


def load(network_choice: str, root: Path = DEFAULT_DIR) -> Deployment:
    path = path_for(network_choice, root)
    if not path.exists():
        raise DeploymentNotFound(
            f"no pouw deployment recorded for {network_key(network_choice)} at {path}; "
            f"run `pouw deploy --network {network_choice}` (or `ape run deploy --network "
            f"{network_choice}`) first"
        )
    return Deployment.from_dict(json.loads(path.read_text()))
