"""Where sweep points run: in this process, in local worker processes, or on a Dask cluster.

Every executor has one job: given a module-level function ``fn`` and tasks ``(key, args)``, yield
``(key, fn(*args))`` as each task finishes, in completion order. ``fn`` is expected never to raise
(the sweep wraps the point function so that an exception becomes a recorded failure); when the
*machinery* loses a task for good — a worker process that keeps dying while running it — the
executor yields a :class:`TaskLost` in its place instead of stopping the other tasks.

==================  =========================================================================
``serial``          one task after another in this process (debugging, profiling)
``local``           a pool of spawned worker processes on this machine (the default)
``dask``            a Dask ``LocalCluster`` started for the sweep, one thread per worker
``tcp://host:port`` an existing Dask scheduler; its workers must be able to import cedar_opt
==================  =========================================================================

Every worker runs one task at a time with one solver thread and one BLAS/OpenMP thread
(:func:`limit_threads`), so results do not depend on the executor and cores are not
oversubscribed.
"""

from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Sequence

from cedar_opt.errors import CedarInputError

Task = tuple[str, tuple]
"""A task: its key (the point id) and the positional arguments of the function."""

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}


def limit_threads() -> None:
    """One BLAS/OpenMP thread in this process (worker initialiser; harmless when repeated)."""
    for k, v in THREAD_ENV.items():
        os.environ[k] = v


@dataclass(frozen=True)
class TaskLost:
    """The executor could not complete a task (its worker died ``attempts`` times running it)."""

    error: str
    attempts: int = 1


class Executor:
    """Base class: a context manager with :meth:`map_unordered`."""

    name = "executor"
    workers = 1

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - trivial
        pass

    def map_unordered(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[tuple[str, Any]]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.workers} worker{'s' if self.workers != 1 else ''})"


class SerialExecutor(Executor):
    """Run tasks one after another in this process."""

    name = "serial"

    def map_unordered(self, fn, tasks):
        for key, args in tasks:
            yield key, fn(*args)


class ProcessExecutor(Executor):
    """A pool of ``workers`` spawned processes on this machine.

    Spawned (not forked) so a worker never inherits the parent's threads or locks. If a worker
    process dies (a crash in native code, the OOM killer), the tasks that were running are re-run
    one by one, each alone in a fresh process, so the culprit is found and innocent tasks finish;
    a task whose process dies ``max_attempts`` times is given up as :class:`TaskLost` and the
    others carry on in a rebuilt pool.
    """

    name = "local"

    def __init__(self, workers: int | None = None, max_attempts: int = 3):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_attempts = max_attempts
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=limit_threads)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _alone(self, fn, args) -> tuple[bool, Any]:
        """Run one task in a fresh one-process pool: (survived, result)."""
        self._pool = pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=limit_threads)
        try:
            return True, pool.submit(fn, *args).result()
        except BrokenProcessPool:
            return False, None
        except Exception as e:
            return True, TaskLost(f"{type(e).__name__}: {e}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map_unordered(self, fn, tasks):
        pending: dict[str, tuple] = dict(tasks)
        while pending:
            self._pool = pool = self._new_pool()
            futs: dict[Future, str] = {pool.submit(fn, *args): key for key, args in pending.items()}
            running: set[str] = set()
            broken = False
            not_done = set(futs)
            while not_done and not broken:
                running = {futs[f] for f in not_done if f.running()} or running
                done, not_done = wait(not_done, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    key = futs[f]
                    try:
                        res = f.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    except Exception as e:  # the task could not be sent or its result not returned
                        res = TaskLost(f"{type(e).__name__}: {e}")
                    pending.pop(key, None)
                    yield key, res
            pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            if not broken:
                continue
            # A worker died. Which task killed it is unknown, so each task that may have been
            # running is re-run alone: innocent ones finish, a task that dies alone every time
            # (max_attempts in all, counting the first death) is given up.
            suspects = sorted(running & set(pending)) or sorted(pending)[: self.workers + 1]
            for key in suspects:
                for _ in range(max(1, self.max_attempts - 1)):
                    survived, res = self._alone(fn, pending[key])
                    if survived:
                        break
                else:
                    res = TaskLost(
                        f"worker process died each time this point ran ({self.max_attempts} attempts, "
                        f"{max(1, self.max_attempts - 1)} of them alone)",
                        self.max_attempts,
                    )
                pending.pop(key)
                yield key, res


class DaskExecutor(Executor):
    """Run tasks on Dask: a ``LocalCluster`` started here (``address=None``) or an existing scheduler.

    A worker lost mid-task is handled by the scheduler: the task is re-run elsewhere, and only a
    task that was running on ``distributed.scheduler.allowed-failures`` + 1 dying workers comes back
    as ``KilledWorker`` (yielded as :class:`TaskLost`).
    """

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None, connect_timeout_s: float = 15.0, worker_wait_s: float = 60.0):
        self.address = address
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.connect_timeout_s = connect_timeout_s
        self.worker_wait_s = worker_wait_s
        self._cluster = None
        self._client = None

    def __enter__(self) -> "DaskExecutor":
        from distributed import Client, LocalCluster

        if self.address is None:
            self._cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            self._client = Client(self._cluster)
            return self
        try:
            self._client = Client(self.address, timeout=f"{self.connect_timeout_s}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise CedarInputError(f"cannot reach a Dask scheduler there ({e})", source="--executor", where=self.address) from None
        try:
            self._client.wait_for_workers(1, timeout=self.worker_wait_s)
        except TimeoutError:
            self.close()
            raise CedarInputError(
                f"the scheduler has no workers after {self.worker_wait_s:g} s; start some with "
                f"`dask worker {self.address} --nthreads 1`",
                source="--executor",
                where=self.address,
            ) from None
        self.workers = len(self._client.scheduler_info().get("workers", {}))
        return self

    def describe(self) -> str:
        where = self.address or "LocalCluster"
        return f"dask at {where} ({self.workers} worker{'s' if self.workers != 1 else ''})"

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None
        if self._cluster is not None:
            try:
                self._cluster.close()
            finally:
                self._cluster = None

    def map_unordered(self, fn, tasks):
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        futs = {}
        for key, args in tasks:
            f = self._client.submit(fn, *args, key=f"cedar-point-{key}-{token}", pure=False)
            futs[f.key] = (key, f)
        for f in as_completed([f for _, f in futs.values()]):
            key = futs[f.key][0]
            if f.status == "finished":
                res = f.result()
            else:
                exc = f.exception()
                res = TaskLost(f"{type(exc).__name__}: {exc}")
            f.release()
            yield key, res


def make_executor(spec: str, workers: int | None = None) -> Executor:
    """``serial`` | ``local`` (alias ``processes``) | ``dask`` | ``tcp://host:port`` → an executor.

    ``workers``: processes for ``local`` and ``dask`` (default: every core); ignored otherwise.
    """
    s = (spec or "local").strip()
    if s == "serial":
        return SerialExecutor()
    if s in ("local", "processes"):
        return ProcessExecutor(workers)
    if s == "dask":
        return DaskExecutor(None, workers)
    if "://" in s:
        scheme, _, rest = s.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in ("tcp", "tls", "ucx", "ws", "wss") or not host or not port.isdigit():
            raise CedarInputError("expected a scheduler address like tcp://host:8786", source="--executor", where=s)
        return DaskExecutor(s, workers)
    raise CedarInputError("unknown executor; use serial, local, dask or a scheduler address tcp://host:port", source="--executor", where=s)
