"""The store: Turing's tables (registry, queue, history) on SQLite or PostgreSQL."""

from turing.store.db import Database, connect
from turing.store.store import Store, TaskRow, open_store

__all__ = ["Database", "Store", "TaskRow", "connect", "open_store"]
