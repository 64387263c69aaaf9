"""A SQLite results store: every finished run is committed as it completes, so an interrupted sweep resumes
without re-running or losing anything, and re-running a finished sweep is instant."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ResultStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    sweep TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    finished REAL NOT NULL
)
"""


class ResultStore:
    """Runs keyed by their config hash; ``put`` commits immediately (WAL journal, safe to interrupt).

    >>> import tempfile, os
    >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "r.sqlite"))
    >>> store.put("k1", "demo", {"lr": 0.1}, {"rankme": 3.0})
    >>> store.get("k1")["metrics"], len(store)
    ({'rankme': 3.0}, 1)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as e:
            raise ValueError(f"{self.path}: not a rankme results store ({e})") from e

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def __contains__(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def put(self, key: str, sweep: str, config: dict[str, Any], metrics: dict[str, Any]) -> None:
        """Store one finished run and commit (an existing key is replaced)."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
                             (key, sweep, json.dumps(config, sort_keys=True), json.dumps(metrics), time.time()))

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT key, sweep, config, metrics FROM runs WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._row(row)

    def runs(self, sweep: str | None = None) -> Iterator[dict[str, Any]]:
        """All stored runs (of one sweep), oldest first."""
        q = "SELECT key, sweep, config, metrics FROM runs"
        args: tuple[Any, ...] = ()
        if sweep is not None:
            q, args = q + " WHERE sweep = ?", (sweep,)
        for row in self._db.execute(q + " ORDER BY finished", args):
            yield self._row(row)

    @staticmethod
    def _row(row: tuple[str, str, str, str]) -> dict[str, Any]:
        return {"key": row[0], "sweep": row[1], "config": json.loads(row[2]), "metrics": json.loads(row[3])}

    def close(self) -> None:
        self._db.close()
