"""warden: decide and prove which code may run on which machines for dstack apps with an on-chain KMS."""

__version__ = "0.1.0"
