"""Layer 4: devnet TDX simulation (mock Intel PKI, nodes, CVMs, guest agent)."""
