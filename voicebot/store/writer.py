"""Writes records off the event loop, in order, in batches; a database that is briefly away
costs a delay, not a record (batches are retried until they are written or the process stops)."""

import logging
import queue
import threading
import time
from typing import Callable, List

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

Write = Callable[[Session], None]
RETRY_S = (0.5, 1, 2, 5, 10)


class RecordWriter:
    def __init__(self, session_factory: Callable[[], Session], name: str = "record-writer"):
        self._session = session_factory
        self._writes: "queue.Queue[Write]" = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> None:
        self._idle.clear()
        self._writes.put(write)

    def flush(self, timeout: float = 10) -> bool:
        """Wait until everything submitted so far is written (tests, reports, shutdown)."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 10) -> None:
        self.flush(timeout)
        self._stopping = True
        self._writes.put(lambda session: None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping:
            batch: List[Write] = [self._writes.get()]
            while len(batch) < 500:
                try:
                    batch.append(self._writes.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)
            if self._writes.empty():
                self._idle.set()

    def _write(self, batch: List[Write]) -> None:
        attempt = 0
        while True:
            try:
                self._commit(batch)
                return
            except OperationalError:  # the database is away: wait for it
                if self._stopping:
                    logger.exception("%d record writes lost at shutdown", len(batch))
                    return
                delay = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                logger.exception("writing %d records failed; retrying in %.1f s", len(batch), delay)
                time.sleep(delay)
                attempt += 1
            except Exception:  # a bad write: keep the others of its batch
                if len(batch) == 1:
                    logger.exception("a record write failed and was dropped")
                    return
                for write in batch:
                    self._write([write])
                return

    def _commit(self, batch: List[Write]) -> None:
        with self._session() as session, session.begin():
            for write in batch:
                write(session)
