"""Layer 5: the `warden` command line, one module per command group."""
