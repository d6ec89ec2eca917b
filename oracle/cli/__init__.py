"""The `pouw` command line."""
