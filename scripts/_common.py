"""Helpers shared by the Ape scripts (underscore files are not registered as scripts)."""

from __future__ import annotations

from typing import Any

import click


def is_local(provider: Any) -> bool:
    """True on the embedded chain and on a local node (anvil)."""
    return provider.network.name == "local"


def pick_sender(account: Any, provider: Any) -> Any:
    """The --account given, or on a local chain the first test account; never a prompt."""
    from ape import accounts

    if account is not None:
        return account
    if is_local(provider):
        return accounts.test_accounts[0]
    raise click.UsageError("--account is required on a live network (an Ape account alias)")


def network_choice(provider: Any) -> str:
    """``ecosystem:network:provider`` of the connected provider (the deployment record key)."""
    return f"{provider.network.ecosystem.name}:{provider.network.name}:{provider.name}"
