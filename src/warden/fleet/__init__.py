"""Layer 3: fleet inventory (workspaces, nodes, device-identity history, CVMs, apps)."""
