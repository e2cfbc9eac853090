"""Layer 4: control-plane HTTP API and dashboard."""
