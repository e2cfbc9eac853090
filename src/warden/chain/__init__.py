"""Layer 2: the one path to the chain: RPC, ABI, signer, transactions, events, contract wrappers."""
