"""The worker (miner): follows the chain, computes jobs, stores and serves results, commits and
claims; its SQLite state and its HTTP API."""
