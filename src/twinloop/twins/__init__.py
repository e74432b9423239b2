"""Asset types, twin instances, relationships and the twin graph. Pure: no I/O beyond reading files."""
