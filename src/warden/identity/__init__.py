"""Layer 1, pure: TDX quotes, PPID, device_id, event logs and BootInfo."""
