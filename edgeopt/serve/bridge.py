"""From the event loop to the solvers: a request's Tasks run in the worker Pool, or on a Dask cluster.

The event loop never runs a method. It hands a ``Work`` (one request's Tasks) to a bridge and reads the
Work's ``events`` queue: ``(index, Event)`` in the order they happened, exactly one ``done`` per task unless
the Work is cancelled; ``(None, message)`` if the executor itself is lost.

* ``PoolBridge``: one thread owns an ``edgeopt.workers.Pool`` (its limits, stop-then-kill backstop and referee
  as on the command line). The loop's ``add`` and ``cancel`` are queued for it and wake it (``Pool.wake``), so it
  waits on the workers' pipes and never polls. It feeds the Pool round robin, one task per Work in turn, and
  keeps at most two per worker in it (each worker runs one and holds its next): a 1,000-task job does not hold a
  one-task request behind all its tasks. ``cancel`` kills the workers running the Work's tasks, as Ctrl-C does.
* ``DaskBridge``: each task is a Dask future (``run_task``, as ``experiment run --scheduler``); a task counts as
  started when it is submitted. Dask cannot interrupt a running task: a cancelled one runs on in its worker
  until its own time limit, its result dropped.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from dataclasses import dataclass, field

from edgeopt.workers import Event, Pool, Task, run_task


@dataclass(eq=False)
class Work:
    """One request's tasks, and what happened to them (read by the event loop, in order)."""

    tasks: list[Task]
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    _next: int = 0  # the next task to hand to the Pool (the bridge's thread only)


class PoolBridge:
    """A worker Pool driven by its own thread (see the module docstring)."""

    executor = "local"

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.failure: str | None = None  # why the Pool stopped, if it did
        self.loop: asyncio.AbstractEventLoop | None = None  # where the Works' events go (set once it runs)
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._pool: Pool | None = None
        self._lock = threading.Lock()  # wake-ups against the Pool's closing
        self._ready = threading.Event()
        # workers spawned by this thread die with it (the kernel's parent-death signal follows the thread)
        self._thread = threading.Thread(target=self._run, name="edgeopt-pool", daemon=True)
        self._thread.start()
        self._ready.wait()

    def add(self, work: Work) -> None:
        self._command("add", work)

    def cancel(self, work: Work) -> None:
        self._command("cancel", work)

    async def close(self) -> None:
        """Kill the workers and end the thread."""
        self._command("close", None)
        await asyncio.to_thread(self._thread.join)

    def _command(self, kind: str, work: Work | None) -> None:
        self._commands.put((kind, work))
        with self._lock:
            if self._pool is not None:
                self._pool.wake()

    def _deliver(self, work: Work, index: int | None, what) -> None:
        self.loop.call_soon_threadsafe(work.events.put_nowait, (index, what))

    def _run(self) -> None:
        rotation: deque[Work] = deque()  # Works with tasks not yet in the Pool, in turn
        owner: dict[int, tuple[Work, int]] = {}  # the Pool's task id -> (Work, index)
        pool = Pool(self.jobs)
        with self._lock:
            self._pool = pool
        self._ready.set()
        try:
            while True:
                for kind, work in self._take(block=not len(pool) and not rotation):
                    if kind == "close":
                        return
                    if kind == "add":
                        rotation.append(work)
                    else:  # cancel
                        for task_id in [t for t, (w, _) in owner.items() if w is work]:
                            pool.cancel(task_id)
                            del owner[task_id]
                        if work in rotation:
                            rotation.remove(work)
                while rotation and len(pool) < 2 * self.jobs:
                    work = rotation.popleft()
                    owner[pool.submit(work.tasks[work._next])] = (work, work._next)
                    work._next += 1
                    if work._next < len(work.tasks):
                        rotation.append(work)
                for event in pool.events() if len(pool) else []:
                    work, index = owner[event.task]
                    if event.kind == "done":
                        del owner[event.task]
                    self._deliver(work, index, event)
        except Exception as exc:  # e.g. a worker that cannot start: every Work still waiting hears it
            self.failure = f"the worker pool stopped: {type(exc).__name__}: {exc}"
            for work in {w for w, _ in owner.values()} | set(rotation):
                self._deliver(work, None, self.failure)
        finally:
            with self._lock:  # no wake-up reaches a closed Pool
                self._pool = None
            pool.close()

    def _take(self, block: bool) -> list[tuple[str, Work | None]]:
        """The commands queued (waiting for the first one if ``block``)."""
        out = []
        try:
            out.append(self._commands.get(block=block))
            while True:
                out.append(self._commands.get_nowait())
        except queue.Empty:
            return out


class DaskBridge:
    """Tasks as futures of a Dask cluster (see the module docstring)."""

    executor = "dask"

    def __init__(self, address: str):
        """Connect to the scheduler at ``address`` (ClusterLost if it cannot be reached)."""
        import logging

        from edgeopt.errors import ClusterLost, InputError

        try:
            from distributed import Client
        except ImportError:
            raise InputError("--scheduler", "needs the dask extra: pip install 'edgeopt[dask]'") from None
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)  # one line says it (ClusterLost)
        try:
            self.client = Client(address, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise ClusterLost(address, f"cannot reach the Dask scheduler at {address} ({exc})") from None
        self.address = address
        self.failure: str | None = None
        self.jobs = sum(self.client.nthreads().values())
        self.loop: asyncio.AbstractEventLoop | None = None
        self._futures: dict[Work, list] = {}

    def add(self, work: Work) -> None:
        futures = self._futures[work] = []
        for index, task in enumerate(work.tasks):
            future = self.client.submit(run_task, task, pure=False)
            futures.append(future)
            work.events.put_nowait((index, Event("started", index)))
            future.add_done_callback(lambda f, index=index: self._done(work, index, f))

    def cancel(self, work: Work) -> None:
        futures = self._futures.pop(work, [])
        if futures:
            self.client.cancel(futures)

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)

    def _done(self, work: Work, index: int, future) -> None:
        """In Dask's callback thread: the row, or the loss of the cluster, to the loop."""
        if work not in self._futures or future.cancelled():
            return
        try:
            what = Event("done", index, result=future.result())
            index_or_none = index
        except Exception as exc:  # noqa: BLE001 (the scheduler or the worker went away mid-task)
            what, index_or_none = f"lost the Dask scheduler at {self.address} ({type(exc).__name__}: {exc})", None
        self.loop.call_soon_threadsafe(work.events.put_nowait, (index_or_none, what))
