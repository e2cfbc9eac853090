"""Layer 5: start and stop the whole local stack."""
