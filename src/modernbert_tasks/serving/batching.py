"""Dynamic batching: concurrent requests grouped into one `predict` call on one model.

A small asyncio queue, not a library: requests wait at most `max_wait_ms` for company, a group
holds at most `max_batch_size` inputs, and `workers` threads run groups (one each), so the event
loop keeps accepting requests (and filling the next group) while batches compute. A group is
formed only when a worker is free: while all are busy, requests queue and the next group takes
them all at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batcher", "Job"]


@dataclass
class Job:
    """One request's inputs (texts, or (text_a, text_b) tuples) and where its answer goes."""

    inputs: list[Any]
    raw: bool  # logits instead of predict's records
    future: asyncio.Future = field(repr=False)

    @property
    def kind(self) -> tuple[bool, bool]:
        # jobs are only run together when predict would take their inputs in one list
        return self.raw, bool(self.inputs) and not isinstance(self.inputs[0], str)


class Batcher:
    """Collects jobs into groups and runs each group with `run_group(inputs, raw)` on one of
    `workers` threads (`thread_started()` runs first in each). `on_batch(texts, seconds)` is
    told about every group."""

    def __init__(
        self,
        run_group: Callable[[list[Any], bool], list[Any]],
        *,
        max_batch_size: int,
        max_wait_ms: float,
        on_batch: Callable[[int, float], None] | None = None,
        workers: int = 1,
        thread_started: Callable[[], None] | None = None,
    ) -> None:
        self.run_group = run_group
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch or (lambda texts, seconds: None)
        self.workers = workers
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self._carry: Job | None = None  # the job that did not fit into the last group
        self._worker: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="predict", initializer=thread_started
        )
        self.busy = 0  # groups computing now

    @property
    def waiting(self) -> int:
        """Jobs queued and not yet running."""
        return self.queue.qsize() + (self._carry is not None)

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        for task in [self._worker, *self._running]:
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._executor.shutdown(wait=True)

    async def on_every_worker(self, fn: Callable[[], None]) -> None:
        """Run `fn` once on each worker thread (at startup: the warm-up), all at once."""
        loop = asyncio.get_running_loop()
        # an executor starts a thread per task while none is idle: one task each
        await asyncio.gather(*(loop.run_in_executor(self._executor, fn) for _ in range(self.workers)))

    async def submit(self, inputs: list[Any], raw: bool = False) -> list[Any]:
        """The answers for `inputs`, in order, once their group has run."""
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(Job(inputs, raw, future))
        return await future

    # --- the worker -----------------------------------------------------------------------
    async def _run(self) -> None:
        free = asyncio.Semaphore(self.workers)
        while True:
            await free.acquire()  # a group is formed only when a worker can take it
            group = await self._collect()
            task = asyncio.get_running_loop().create_task(self._run_group(group, free))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_group(self, group: list[Job], free: asyncio.Semaphore) -> None:
        self.busy += 1
        try:
            await self._run_jobs(group)
        finally:
            self.busy -= 1
            free.release()

    async def _next_job(self, timeout: float | None) -> Job | None:
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        if timeout is None:
            return await self.queue.get()
        if not self.queue.empty():
            return self.queue.get_nowait()
        if timeout <= 0:
            return None
        # asyncio.wait (not wait_for): an item that arrives as the timeout fires is kept
        getter = asyncio.ensure_future(self.queue.get())
        done, _ = await asyncio.wait({getter}, timeout=timeout)
        if done:
            return getter.result()
        getter.cancel()
        try:
            return await getter
        except asyncio.CancelledError:
            return None

    async def _collect(self) -> list[Job]:
        """The first waiting job, then whatever joins it within max_wait while the group has
        room. A job that would overflow the group starts the next one; a single job larger
        than max_batch_size runs alone (predict batches it internally)."""
        first = await self._next_job(None)
        assert first is not None  # without a timeout, _next_job waits for a job
        group: list[Job] = [first]
        size = len(first.inputs)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch_size:
            job = await self._next_job(deadline - time.monotonic())
            if job is None:
                break
            if job.future.done():  # its client went away while it waited
                continue
            if size + len(job.inputs) > self.max_batch_size:
                self._carry = job
                break
            group.append(job)
            size += len(job.inputs)
        return group

    async def _run_jobs(self, jobs: list[Job]) -> None:
        jobs = [job for job in jobs if not job.future.done()]
        kinds: dict[tuple[bool, bool], list[Job]] = {}
        for job in jobs:
            kinds.setdefault(job.kind, []).append(job)
        for (raw, _), same in kinds.items():
            try:
                answers = await self._call([x for job in same for x in job.inputs], raw)
            except Exception as exc:
                if len(same) == 1:
                    _settle(same[0].future, exception=exc)
                    continue
                # one bad request must not fail the others it was grouped with
                for job in same:
                    try:
                        _settle(job.future, await self._call(job.inputs, raw))
                    except Exception as alone:
                        _settle(job.future, exception=alone)
                continue
            at = 0
            for job in same:
                _settle(job.future, answers[at : at + len(job.inputs)])
                at += len(job.inputs)

    async def _call(self, inputs: list[Any], raw: bool) -> list[Any]:
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        answers = await loop.run_in_executor(self._executor, self.run_group, inputs, raw)
        self.on_batch(len(inputs), time.perf_counter() - start)
        return answers


def _settle(future: asyncio.Future, result: Any = None, *, exception: BaseException | None = None) -> None:
    if future.done():  # cancelled: the client disconnected
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
