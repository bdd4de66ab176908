"""`python -m fatctl` is the same as the `fatctl` console script."""

from fatctl.cli.main import run

run()
