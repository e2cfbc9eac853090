"""`python -m warden.probe run …`: the probe container's entry point (the commands of `warden probe`)."""

from warden.cli.probe import main

main()
