"""Policy files: the on-chain allowlists an operator wants, kept in git, turned into a Plan for
`warden.changes` (`warden plan` / `warden apply`)."""
