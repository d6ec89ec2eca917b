"""The `pouw` command line: the root group and ``main()`` in :mod:`oracle.cli.main`, one
module of commands per user (demo, deployer, oracle, worker, requester, watcher) and their
shared options in :mod:`oracle.cli.options`."""
