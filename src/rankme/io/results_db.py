"""A SQLite results store: every finished run is committed as it completes, so an interrupted sweep resumes
without re-running or losing anything, and re-running a finished sweep is instant.

Several processes may share one store: a process *claims* a run before training it, so two ``rankme demo``
commands on one folder split the work instead of doing it twice. A claim whose process has died (same machine)
is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rankme.core.errors import InputError

__all__ = ["ResultStore", "StoreError"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        key TEXT PRIMARY KEY, sweep TEXT NOT NULL, config TEXT NOT NULL, metrics TEXT NOT NULL, finished REAL NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, since REAL)",
)
_OWNER = (socket.gethostname(), os.getpid())


_BUSY = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED: another connection holds a lock
_CANTOPEN = 14  # SQLITE_CANTOPEN: the file cannot be opened or created


class StoreError(InputError):
    """A results store or cache file that cannot be used: the message says which file and what to do; ``path`` is
    the file and ``kind`` what went wrong: ``"busy"`` (another process holds a lock), ``"cannot-open"`` (the file or
    its folder cannot be opened or created) or ``"damaged"`` (not a rankme store, or damaged). An
    :class:`~rankme.core.errors.InputError`."""


def sqlite_code(e: BaseException) -> int | None:
    """SQLite's primary result code of ``e`` (``SQLITE_BUSY`` = 5, ``SQLITE_CANTOPEN`` = 14, ...: the low byte of
    its extended code), or ``None`` when it carries none: Python 3.10's ``sqlite3`` errors have no code, and neither
    has an error that is not SQLite's.

    Examples:
        >>> import tempfile
        >>> try:
        ...     sqlite3.connect(Path(tempfile.mkdtemp()) / "no-folder" / "r.sqlite")
        ... except sqlite3.Error as e:
        ...     code = sqlite_code(e)
        >>> code in (None, _CANTOPEN)   # None on Python 3.10
        True
        >>> sqlite_code(ValueError("x")) is None
        True
    """
    code = getattr(e, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _cannot_open(path: Path) -> bool:
    """Whether the file system alone says ``path`` cannot be opened (or created) for reading and writing: what a
    store decides by when SQLite gives no result code (Python 3.10)."""
    if path.exists():
        return not (path.is_file() and os.access(path, os.R_OK | os.W_OK))
    return not os.access(path.parent, os.W_OK | os.X_OK)


def _alive(host: str, pid: int) -> bool:
    if host != socket.gethostname():
        return True  # another machine: trust its claim
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ResultStore:
    """Runs keyed by their config hash; ``put`` commits immediately (WAL journal, safe to interrupt).

    Examples:
        >>> import tempfile
        >>> store = ResultStore(Path(tempfile.mkdtemp()) / "r.sqlite")
        >>> store.put("k1", "demo", {"lr": 0.1}, {"rankme": 3.0})
        >>> store.get("k1")["metrics"], len(store)
        ({'rankme': 3.0}, 1)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.path}: cannot create the folder {self.path.parent} ({e.strerror or e}); "
                             "choose another location", path=self.path, kind="cannot-open") from e
        with self._guard():
            self._db = sqlite3.connect(self.path, timeout=60)
            self._setup(time.monotonic() + 60)
            self._db.execute("SELECT key, sweep, config, metrics, finished FROM runs LIMIT 1").fetchall()

    def _setup(self, deadline: float) -> None:
        """WAL journal and schema. Two processes opening a new store at once can get SQLITE_BUSY at once, without
        SQLite's busy wait (switching the journal, or a read lock upgraded to a write lock, would deadlock), so
        this step is retried until ``deadline``."""
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._db.commit()
                return
            except sqlite3.OperationalError as e:
                self._db.rollback()
                if sqlite_code(e) not in _BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn a damaged file's low-level errors into one line naming the file and the fix, decided by SQLite's
        result code (:func:`sqlite_code`), never by its message; without a code (Python 3.10), by the file system."""
        try:
            yield
        except (sqlite3.DatabaseError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
            code = sqlite_code(e)
            guessed = code is None and isinstance(e, sqlite3.OperationalError)
            if guessed and _cannot_open(self.path):
                code = _CANTOPEN
            if code in _BUSY:
                raise StoreError(f"{self.path}: busy (another process holds a lock for over a minute): retry, or "
                                 "stop the other process", path=self.path, kind="busy") from e
            if code == _CANTOPEN:
                raise StoreError(f"{self.path}: cannot be opened or created ({e}); check that its folder is "
                                 "writable, or choose another location", path=self.path, kind="cannot-open") from e
            hint = " (or, if another process may hold it, retry when that one finishes)" if guessed else ""
            raise self.damaged(f"{type(e).__name__}: {e}", hint) from e

    def damaged(self, detail: str, also: str = "") -> StoreError:
        """The one-line error for a damaged store: the file, what is wrong (``detail``) and the fix (then ``also``).

        Examples:
            >>> import tempfile
            >>> err = ResultStore(Path(tempfile.mkdtemp()) / "r.sqlite").damaged("a row without 'value'")
            >>> "r.sqlite: damaged" in str(err) and "move it aside" in str(err)
            True
        """
        return StoreError(f"{self.path}: damaged or not a rankme results store ({detail}); move it aside (mv "
                          f"{self.path} {self.path}.bad) and re-run: finished runs are recomputed{also}",
                          path=self.path, kind="damaged")

    def __len__(self) -> int:
        with self._guard():
            return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def __contains__(self, key: str) -> bool:
        with self._guard():
            return self._db.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def put(self, key: str, sweep: str, config: dict[str, Any], metrics: dict[str, Any]) -> None:
        """Store one finished run and commit (an existing key is replaced); releases this process's claim."""
        with self._guard(), self._db:
            self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)",
                             (key, sweep, json.dumps(config, sort_keys=True), json.dumps(metrics), time.time()))
            self._db.execute("DELETE FROM claims WHERE key = ? AND host = ? AND pid = ?", (key, *_OWNER))

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored run (``key``, ``sweep``, ``config``, ``metrics``), or ``None``."""
        with self._guard():
            row = self._db.execute("SELECT key, sweep, config, metrics FROM runs WHERE key = ?", (key,)).fetchone()
            return None if row is None else self._row(row)

    def runs(self, sweep: str | None = None) -> Iterator[dict[str, Any]]:
        """All stored runs (of one sweep), oldest first."""
        q = "SELECT key, sweep, config, metrics FROM runs"
        args: tuple[Any, ...] = ()
        if sweep is not None:
            q, args = q + " WHERE sweep = ?", (sweep,)
        with self._guard():
            rows = self._db.execute(q + " ORDER BY finished", args).fetchall()
            out = [self._row(row) for row in rows]
        yield from out

    def claim(self, key: str) -> bool:
        """Claim a run before training it: True when this process may train it (nobody else alive holds it).

        Examples:
            >>> import tempfile
            >>> s = ResultStore(Path(tempfile.mkdtemp()) / "r.sqlite")
            >>> s.claim("k"), s.claim("k"), s.claimed_elsewhere(["k"])
            (True, True, [])
        """
        with self._guard():
            # the check and the claim in one write transaction: two processes can never both see the run free
            self._db.execute("BEGIN IMMEDIATE")
            try:
                free = self._db.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is None
                row = self._db.execute("SELECT host, pid FROM claims WHERE key = ?", (key,)).fetchone()
                if free and not (row is not None and (row[0], row[1]) != _OWNER and _alive(row[0], int(row[1]))):
                    self._db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", (key, *_OWNER, time.time()))
                else:
                    free = False
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
            return free

    def release(self, key: str) -> None:
        """Give up this process's claim on a run (it was interrupted, or failed)."""
        with self._guard(), self._db:
            self._db.execute("DELETE FROM claims WHERE key = ? AND host = ? AND pid = ?", (key, *_OWNER))

    def claimed_elsewhere(self, keys: list[str]) -> list[str]:
        """The keys (not stored yet) that another live process has claimed."""
        out = []
        with self._guard():
            for key in keys:
                row = self._db.execute("SELECT host, pid FROM claims WHERE key = ?", (key,)).fetchone()
                if row is not None and (row[0], row[1]) != _OWNER and _alive(row[0], int(row[1])) and key not in self:
                    out.append(key)
        return out

    @staticmethod
    def _row(row: tuple[str, str, str, str]) -> dict[str, Any]:
        return {"key": row[0], "sweep": row[1], "config": json.loads(row[2]), "metrics": json.loads(row[3])}

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
