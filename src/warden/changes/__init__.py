"""The one change flow: a Plan of typed changes → checks (owner, simulation, funds) → send with consecutive
nonces, or write a Safe Transaction Builder batch, or print calldata → wait → re-read → report.

Every writer uses it: the CLI's allowlist commands, the dashboard's actions and `warden apply`.
"""
