"""Layer 1, pure: dstack-compatible key derivation and signature chains."""
