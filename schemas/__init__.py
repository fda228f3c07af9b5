"""One place for every column name: raw records, ledger frames, platforms and tables."""
