"""The request cache: every answered model request stored in SQLite (WAL) as soon as it is answered.

lm-eval's ``CachingLM`` does the bookkeeping (look up each request, run only the missing ones, hand
the model a hook that stores answers as they come); this module gives it a store that survives a
kill: one SQLite file per cell in write-ahead-log mode, one committed transaction per answer, and
counts of what came from the cache and what was computed, for the result's provenance.
"""

from __future__ import annotations

import contextlib
import pickle
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lm_eval.api.model import CacheHook, CachingLM

REQUEST_METHODS = ("loglikelihood", "loglikelihood_rolling", "generate_until")
_SCHEMA = "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value BLOB NOT NULL)"


class RequestCache:
    """A dict-like SQLite table of answers (what ``CachingLM`` reads and writes), durable per write.

    WAL with ``synchronous=NORMAL`` keeps every committed answer through a killed process (only a power
    loss can drop the last few); readers never block the one writer; ``timeout`` waits out another
    writer's lock instead of failing.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self.hits = 0
        self.stored = 0

    def __contains__(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM answers WHERE key = ?", (key,)).fetchone() is not None

    def __getitem__(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        self.hits += 1
        return pickle.loads(row[0])

    def __setitem__(self, key: str, value: Any) -> None:
        cursor = self._db.execute("INSERT OR IGNORE INTO answers (key, value) VALUES (?, ?)",
                                  (key, pickle.dumps(value)))
        self.stored += cursor.rowcount  # an answer stored by the hook is offered again at the end: count once

    @property
    def counts(self) -> dict[str, int]:
        """Requests answered from the cache and requests computed (and stored) since it was opened."""
        return {"from_cache": self.hits, "computed": self.stored}

    def commit(self) -> None:
        """Each write is already its own transaction (autocommit); kept for ``CachingLM``'s final call."""

    def close(self) -> None:
        self._db.close()


class _Originals:
    """The model's own request methods, which ``CachingLM`` calls for the requests it has no answer for."""

    def __init__(self, lm) -> None:
        for attr in REQUEST_METHODS:
            setattr(self, attr, getattr(lm, attr))


@contextlib.contextmanager
def resumable(lm, path: Path) -> Iterator[RequestCache]:
    """Route ``lm``'s requests through the cache at ``path`` while the block runs.

    The model object itself is patched (not wrapped) because lm-eval's evaluator accepts only ``LM``
    instances; on exit its own methods and cache hook are restored.
    """
    cache = RequestCache(path)
    caching = CachingLM.__new__(CachingLM)  # CachingLM's bookkeeping over our store, not its SqliteDict
    caching.lm, caching.cache_db, caching.dbdict = _Originals(lm), str(path), cache
    previous_hook = lm.cache_hook
    lm.set_cache_hook(CacheHook(caching))
    for attr in REQUEST_METHODS:
        setattr(lm, attr, getattr(caching, attr))
    try:
        yield cache
    finally:
        for attr in REQUEST_METHODS:
            delattr(lm, attr)
        lm.set_cache_hook(previous_hook)
        cache.close()
