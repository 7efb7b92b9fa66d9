"""The `fed` command line."""
