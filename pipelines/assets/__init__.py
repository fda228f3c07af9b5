"""The asset graph, one module per stage: raw records per platform and year (`raw`) → ledger,
hours bank, reconciliation (`ledger`) → provincial files and form results (`delivery`), and the
answers read from them (`answers`); the jobs, executor and schedules in `jobs`.

Assets are thin: connectors pull, `pipelines.rules` decides, the store writes, and each asset
reports what it did as metadata (counts, schema, watermarks, a masked preview).
"""
