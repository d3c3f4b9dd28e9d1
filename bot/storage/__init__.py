"""Storage implementations of handlers.store.Store: SQLite (one instance) or PostgreSQL (several replicas)."""
from .sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "open_store"]


def open_store(config):
    """The store app.yaml and the environment ask for: PostgreSQL when a database URL is set, else SQLite.
    PostgreSQL is imported only then, so an SQLite deployment needs no driver."""
    if config.database_url:
        from .postgres import PostgresStore
        return PostgresStore(config.database_url)
    return SQLiteStore(config.database)
