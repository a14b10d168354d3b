"""Storage: the tables, column types, engine and sessions, migrations, the audit
chain, backups and search."""
