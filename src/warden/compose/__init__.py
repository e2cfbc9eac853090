"""Layer 1, pure: app-compose manifests and their hashes."""
