"""pouw off-chain library, by layer. A layer imports only the layers below it, and the rooms
of one layer (``|``) do not import each other; ``make test`` enforces it (``lint-imports``,
contracts in ``pyproject.toml``)::

    cli                       the `pouw` commands, by who uses them
    sim                       in-process plays of the protocol (`pouw demo`, `ape run simulate`)
    client | node | worker    one-shot users (requester, auditor, status, report); the oracle
                              node and the worker services
    chain | store             JSON-RPC, transactions and deployment; blob and spec stores
    infra                     HTTP server, SQLite state file, JSON-line logs
    compute                   job kinds, worker compute, verification, compiled kernels
    protocol                  pure rules: specs, hashes, commitments, verdicts, EIP-712, codecs
    exceptions                the error types every layer raises

Import the submodules you need (`oracle.protocol.spec`, `oracle.compute.verify`, ...);
importing the package itself loads nothing and has no side effects.
"""
