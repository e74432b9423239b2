"""The command line: ``twinloop --help``."""
