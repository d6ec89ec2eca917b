"""The oracle node: follows the chain, verifies submissions, signs and collects EIP-712
attestations and settles them in batches; its SQLite state and its HTTP API."""
