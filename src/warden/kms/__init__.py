"""Layer 3: the KMS service and the dstack-compatible auth webhook."""
