"""Jobs and their rows in an embedded SQLite database: a service killed with SIGKILL loses nothing finished.

Every state change is one transaction (a job created; started; a row added together with its job's count; a
job ended), in WAL mode with ``synchronous=FULL``, so a row is either in the file with its count or not at all.
A row's ``(job, idx)`` is unique: no row can be recorded twice. The file is held with SQLite's exclusive lock
for as long as the service runs (a second service on the same file is refused; the kernel releases the lock
when the process dies, however it dies).

A service that starts on a store with jobs still ``queued`` or ``running`` marks them ``interrupted``, keeping
their finished rows: it does not re-run them. The likeliest cause of a killed service is the work itself (an
instance that took the machine's memory, a solver that crashed it); re-queuing would repeat that at every
restart, and a client that still wants the rest can submit the job again. Not thread-safe: the service calls
it from one thread.
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from edgeopt.errors import InputError

VERSION = 1  # PRAGMA user_version of a store this code writes
UNFINISHED = ("queued", "running")
SCHEMA = """
BEGIN;
CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, reference TEXT,
                   total INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, started REAL,
                   finished REAL, message TEXT);
CREATE TABLE rows (seq INTEGER PRIMARY KEY, job TEXT NOT NULL REFERENCES jobs (id), idx INTEGER NOT NULL,
                   row BLOB NOT NULL, UNIQUE (job, idx));
PRAGMA user_version = 1;
COMMIT;
"""


class Store:
    def __init__(self, path: str | Path):
        """Open (or create) the store at ``path``; an InputError naming ``--store`` when it cannot be used."""
        try:
            self.db = sqlite3.connect(path, timeout=0.5, isolation_level="IMMEDIATE", check_same_thread=False)
            self.db.execute("PRAGMA locking_mode = EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")
            self.db.execute("BEGIN EXCLUSIVE")  # takes the lock now, and holds it (locking_mode)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self.db.commit()
            if version == 0 and not tables:
                self.db.executescript(SCHEMA)
            elif version != VERSION or not {"jobs", "rows"} <= tables:
                raise InputError("--store", f"{path} is not an edgeopt serve store (version {version}, tables "
                                            f"{', '.join(sorted(tables)) or 'none'})")
        except sqlite3.Error as exc:
            reason = ("is in use by another edgeopt serve" if "locked" in str(exc) else
                      f"cannot be used as an SQLite database ({exc})")
            raise InputError("--store", f"{path} {reason}") from None

    def close(self) -> None:
        self.db.close()

    def create(self, job_id: str, kind: str, total: int, reference: str | None) -> None:
        with self.db:
            self.db.execute("INSERT INTO jobs (id, kind, status, reference, total, created) VALUES (?, ?, 'queued', "
                            "?, ?, ?)", (job_id, kind, reference, total, time.time()))

    def started(self, job_id: str) -> None:
        with self.db:
            self.db.execute("UPDATE jobs SET status = 'running', started = ? WHERE id = ? AND status = 'queued'",
                            (time.time(), job_id))

    def add_row(self, job_id: str, idx: int, row: bytes) -> None:
        """A finished row and its job's count, together."""
        with self.db:
            self.db.execute("INSERT INTO rows (job, idx, row) VALUES (?, ?, ?)", (job_id, idx, row))
            self.db.execute("UPDATE jobs SET done = done + 1 WHERE id = ?", (job_id,))

    def end(self, job_id: str, status: str, message: str | None = None) -> None:
        """A job that is still queued or running ends with ``status`` (a finished job stays as it ended)."""
        with self.db:
            self.db.execute(f"UPDATE jobs SET status = ?, finished = ?, message = ? WHERE id = ? AND status IN "
                            f"{UNFINISHED}", (status, time.time(), message, job_id))

    def interrupt_unfinished(self, message: str) -> int:
        """Every job still queued or running becomes ``interrupted`` (at start-up and at shutdown); how many."""
        with self.db:
            return self.db.execute(f"UPDATE jobs SET status = 'interrupted', finished = ?, message = ? WHERE status "
                                   f"IN {UNFINISHED}", (time.time(), message)).rowcount

    def job(self, job_id: str) -> dict | None:
        cur = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        found = cur.fetchone()
        return None if found is None else dict(zip([c[0] for c in cur.description], found))

    def rows(self, job_id: str) -> list[bytes]:
        """The job's rows in the order they finished."""
        return [r[0] for r in self.db.execute("SELECT row FROM rows WHERE job = ? ORDER BY seq", (job_id,))]

    def counts(self) -> dict[str, int]:
        """Jobs by status."""
        return dict(self.db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
