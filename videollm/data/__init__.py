"""Chat records: the schema, dataset adapters, splits, templates and collation."""
