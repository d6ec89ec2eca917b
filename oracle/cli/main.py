"""`pouw`: the command line of the protocol; this module is its root (the ``pouw`` entry
point, and ``python -m oracle.cli.main`` / ``python -m oracle.cli``).

The commands live in modules named after who runs them:

* :mod:`oracle.cli.demo` — ``demo``: a full round trip on the embedded chain;
* :mod:`oracle.cli.deployer` — ``node`` starts anvil, ``deploy`` puts pouw on it (or any
  chain, from a key file), ``store serve`` serves the spec store;
* :mod:`oracle.cli.oracle` and :mod:`oracle.cli.worker` — ``oracle run`` and ``worker run``,
  the long-running services (web3.py, SQLite);
* :mod:`oracle.cli.requester` — ``job create`` / ``job show`` / ``job refund`` and
  ``withdraw``, the requester's and the earner's commands;
* :mod:`oracle.cli.watcher` — ``status`` (emission and leaderboard), ``audit`` (re-derive a
  posted verdict from public data), ``report``, ``dispute`` (refute a wrong VALID matmul
  verdict on-chain) and ``watch`` (a daemon that disputes wrong verdicts itself).

Their shared options and parsing are in :mod:`oracle.cli.options`. Every chain command reads
the deployment record of ``--network`` from ``--deployments`` and turns bad input into a
one-line error (``error: ...``) with exit status 2 (:mod:`oracle.cli.errors`).
"""

from __future__ import annotations

import sys

import click

from oracle.cli.demo import demo
from oracle.cli.deployer import deploy, node, store
from oracle.cli.errors import PouwGroup
from oracle.cli.oracle import oracle
from oracle.cli.requester import job, withdraw
from oracle.cli.watcher import audit, dispute, report, status, watch
from oracle.cli.worker import worker
from oracle.exceptions import PouwError

__all__ = ["cli", "main"]


@click.group(cls=PouwGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """pouw — proof of useful work: escrowed AI compute jobs, verification far cheaper than
    the work, and a halving token emission shared by verified work alone."""


for _command in (
    demo,
    node,
    store,
    oracle,
    worker,
    report,
    deploy,
    job,
    withdraw,
    status,
    audit,
    dispute,
    watch,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point that turns pouw errors into one-line messages."""
    import warnings

    # ape-vyper's settings model trips a pydantic-settings warning on every Ape start:
    # noise for a user of pouw, nothing they can act on.
    warnings.filterwarnings("ignore", message="Field 'import_remapping' has an incomplete")
    from oracle.chain.anvil import use_project_tools

    use_project_tools()  # `pouw demo --network ethereum:local:foundry` finds our anvil
    try:
        cli(standalone_mode=True)
    except PouwError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
