"""The `aoer` command line."""
