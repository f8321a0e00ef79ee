"""Writes records off the event loop, in order, in batches. While the database is away, batches
go to a spool file on local disk and are written when it is back, by this process or, if it
stopped first, by the next one that starts on the same folder: an outage costs a delay, not a
record."""

import datetime as dt
import fcntl
import json
import logging
import os
import queue
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from voicebot.store.models import Base

logger = logging.getLogger(__name__)

RETRY_S = (0.5, 1, 2, 5, 10)
BATCH = 500


@dataclass
class Write:
    """One change as data, so it can wait on disk: an insert of `values` into `table`, or,
    with `where`, an update of the rows whose columns equal `where`."""

    table: str
    values: dict
    where: Optional[dict] = None

    def apply(self, session: Session) -> None:
        table = Base.metadata.tables[self.table]
        if self.where is None:
            session.execute(table.insert().values(self.values))
        else:
            session.execute(table.update().where(*[table.c[k] == v for k, v in self.where.items()]).values(self.values))

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_encode)

    @classmethod
    def from_json(cls, line: str) -> "Write":
        return cls(**json.loads(line, object_hook=_decode))


def _encode(value):
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"cannot spool {type(value).__name__}")


def _decode(obj: dict):
    return dt.datetime.fromisoformat(obj["$datetime"]) if obj.keys() == {"$datetime"} else obj


class Spool:
    """Writes waiting on disk, one JSON line each, in files of `folder` named records-*.jsonl.
    A process holds an flock on each file it owns; a file nobody holds was left by a process
    that stopped before the database came back, and the next writer to start adopts it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.own = folder / f"records-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._held: Dict[Path, int] = {}  # file -> its locked descriptor
        self.files: List[Path] = self._adopt()  # oldest first; written to the database in this order

    @property
    def pending(self) -> bool:
        return bool(self.files)

    def append(self, writes: List[Write]) -> None:
        if self.own not in self._held:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._held[self.own] = self._create(self.own)
            self.files.append(self.own)
        os.write(self._held[self.own], _lines(writes))
        os.fsync(self._held[self.own])

    def written(self, path: Path) -> None:
        """Every write of `path` is in the database: the file goes."""
        path.unlink()
        os.close(self._held.pop(path))
        self.files.remove(path)

    def keep(self, path: Path, writes: List[Write]) -> None:
        """Only `writes` of `path` still wait (the others are in the database)."""
        partial = path.with_suffix(".partial")
        handle = self._create(partial)
        os.write(handle, _lines(writes))
        os.fsync(handle)
        partial.replace(path)
        os.close(self._held[path])
        self._held[path] = handle

    def release(self) -> None:
        """Drops the locks: the next writer to start adopts what is left."""
        for handle in self._held.values():
            os.close(handle)
        self._held.clear()

    @staticmethod
    def _create(path: Path) -> int:
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def _adopt(self) -> List[Path]:
        for path in sorted(self.folder.glob("records-*.jsonl"), key=lambda p: p.stat().st_mtime):
            try:
                handle = os.open(path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(handle).st_nlink == 0:
                    raise BlockingIOError  # written and removed by its owner while we waited
            except BlockingIOError:  # a live process's file
                os.close(handle)
                continue
            self._held[path] = handle
        if self._held:
            logger.warning("adopted %d spooled record file(s) in %s: writing them to the database",
                           len(self._held), self.folder)
        return list(self._held)

    @staticmethod
    def read(path: Path) -> List[Write]:
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            return [Write.from_json(line) for line in lines]
        except json.JSONDecodeError:  # a process killed mid-write leaves its last line cut short
            return [Write.from_json(line) for line in lines[:-1]]


def _lines(writes: List[Write]) -> bytes:
    return "".join(w.to_json() + "\n" for w in writes).encode()


class RecordWriter:
    def __init__(self, session_factory: Callable[[], Session], spool_folder: Path, name: str = "record-writer"):
        self._session = session_factory
        self._writes: "queue.Queue[Optional[Write]]" = queue.Queue()
        self._done = threading.Condition()
        self._unwritten = 0  # submitted and neither written nor spooled yet
        self._stopping = False
        self.spool = Spool(spool_folder)
        self._retries = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> None:
        with self._done:
            self._unwritten += 1
        self._writes.put(write)

    def flush(self, timeout: float = 10) -> bool:
        """Wait until everything submitted so far is in the database (tests, reports, shutdown)."""
        with self._done:
            return self._done.wait_for(lambda: not self._unwritten and not self.spool.pending, timeout)

    def stop(self, timeout: float = 10) -> None:
        self.flush(timeout)
        self._stopping = True
        self._writes.put(None)
        self._thread.join(timeout)
        self.spool.release()

    def _run(self) -> None:
        while not self._stopping:
            batch = self._next_batch()
            if self.spool.pending:
                if batch:
                    self.spool.append(batch)  # behind what already waits, to keep the order
                self._write_spool()
            elif batch:
                rest = self._write(batch)
                if rest:
                    self.spool.append(rest)
                    logger.warning("the database is away: record writes go to %s until it is back", self.spool.own)
            with self._done:
                self._unwritten -= len(batch)
                self._done.notify_all()
        rest = self._next_batch(wait=False)
        if rest:
            self.spool.append(rest)
        if self.spool.pending:
            logger.warning("record writes wait in %s for the database and the next start", self.spool.folder)

    def _next_batch(self, wait: bool = True) -> List[Write]:
        """The writes waiting, at most BATCH; while a spool waits, wait no longer than its next retry."""
        batch: List[Optional[Write]] = []
        if wait:
            timeout = RETRY_S[min(self._retries, len(RETRY_S) - 1)] if self.spool.pending else None
            try:
                batch.append(self._writes.get(timeout=timeout))
            except queue.Empty:
                return []
        while len(batch) < BATCH or not wait:
            try:
                batch.append(self._writes.get_nowait())
            except queue.Empty:
                break
        return [w for w in batch if w is not None]

    def _write_spool(self) -> None:
        for path in list(self.spool.files):
            rest = self._write(Spool.read(path))
            if rest:
                self.spool.keep(path, rest)
                self._retries += 1
                return
            self.spool.written(path)
        self._retries = 0
        logger.warning("the database is back: the spooled record writes are written")

    def _write(self, batch: List[Write]) -> List[Write]:
        """Writes the batch; returns the part the database, being away, did not take. A write
        it refuses is dropped alone, not with its batch."""
        try:
            self._commit(batch)
            return []
        except OperationalError:
            logger.debug("writing %d records failed", len(batch), exc_info=True)
            return batch
        except Exception:
            if len(batch) == 1:
                logger.exception("a record write failed and was dropped: %s %s", batch[0].table, batch[0].where or "")
                return []
            for done, write in enumerate(batch):
                if self._write([write]):
                    return batch[done:]
            return []

    def _commit(self, batch: List[Write]) -> None:
        with self._session() as session, session.begin():
            for write in batch:
                write.apply(session)
