"""PostgreSQL at the edge: schema migrations, call records, call-backs, lookups."""
