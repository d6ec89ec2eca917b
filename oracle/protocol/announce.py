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

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from oracle.exceptions import PeerError

__all__ = ["make_announcement", "message", "verify_announcement"]

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


def verify_announcement(body: bytes, chain_id: int, market: str) -> tuple[str, str, int]:
    """(worker, url, timestamp) of a valid announcement; PeerError otherwise."""
    try:
        data = json.loads(body)
        worker, url, ts, sig = (
            data["worker"],
            data["url"],
            int(data["timestamp"]),
            data["signature"],
        )
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must be http(s)")
        if len(url) > MAX_URL:
            raise ValueError("url too long")
        signer = Account.recover_message(
            encode_defunct(text=message(chain_id, market, url, ts)), signature=sig
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PeerError(f"bad announcement: {exc}") from None
    if signer.lower() != str(worker).lower():
        raise PeerError("bad announcement: signature is not the worker's")
    return to_checksum_address(worker), url.rstrip("/"), ts
