"""Benchmarks: each compares warden with a baseline measured in the same run and prints the ratio."""
