"""How an oracle learns where a worker serves its results: signed endpoint announcements.

A worker signs (EIP-191 ``personal_sign``) the message::

    pouw worker endpoint
    chain: <chain id>
    market: <JobMarket address>
    url: <base URL>
    timestamp: <unix milliseconds>

and POSTs ``{"worker", "url", "timestamp", "signature"}`` to each oracle's ``/workers``. The
oracle keeps, per worker, the URL of the newest valid announcement. Only the worker's key can
move its URL, so nobody can redirect an oracle away from an honest worker; a wrong URL costs
only the worker (its result is not served, so its submission is INVALID after the reveal
window). Milliseconds, so a worker restarted on a new port within the same second still
replaces its old URL. Oracles may also be given static ``address=url`` pairs.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils import to_checksum_address

from oracle.exceptions import PeerError

__all__ = ["Announcement", "make_announcement", "message", "verify_announcement"]

MAX_URL = 512


def message(chain_id: int, market: str, url: str, timestamp: int) -> str:
    """The text a worker signs."""
    return (
        f"pouw worker endpoint\nchain: {chain_id}\nmarket: {to_checksum_address(market)}\n"
        f"url: {url}\ntimestamp: {timestamp}"
    )


def make_announcement(
    account: LocalAccount, chain_id: int, market: str, url: str, timestamp: int
) -> dict[str, Any]:
    """The JSON body a worker POSTs to ``/workers``."""
    signed = account.sign_message(encode_defunct(text=message(chain_id, market, url, timestamp)))
    return {
        "worker": account.address,
        "url": url,
        "timestamp": timestamp,
        "signature": "0x" + bytes(signed.signature).hex(),
    }


class Announcement(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /workers``."""

    worker: Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}\Z")]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=MAX_URL)]
    #: Unix milliseconds; stored as a signed 64-bit integer.
    timestamp: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    signature: Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{130}\Z")]


def verify_announcement(body: bytes, chain_id: int, market: str) -> tuple[str, str, int]:
    """(worker, url, timestamp) of a valid announcement; PeerError naming what is wrong
    otherwise."""
    try:
        ann = msgspec.json.decode(body, type=Announcement)
    except msgspec.MsgspecError as exc:
        raise PeerError(f"bad announcement: {exc}") from None
    try:
        signer = Account.recover_message(
            encode_defunct(text=message(chain_id, market, ann.url, ann.timestamp)),
            signature=ann.signature,
        )
    except (ValueError, TypeError, BadSignature) as exc:  # eth-keys: an invalid signature
        raise PeerError(f"bad announcement: signature: {exc}") from None
    if signer.lower() != ann.worker.lower():
        raise PeerError("bad announcement: signature is not the worker's")
    return to_checksum_address(ann.worker), ann.url.rstrip("/"), ann.timestamp
