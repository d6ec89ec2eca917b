"""Talking to the chain: the JSON-RPC client and transaction sender, deployment (web3 and Ape),
deployment records, keys, and the local anvil node."""
