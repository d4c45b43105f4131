"""`python -m aoer` runs the `aoer` command line."""

from aoer.cli.main import main

main()
