"""`python -m turing` runs the CLI."""

from turing.cli import main

main()
