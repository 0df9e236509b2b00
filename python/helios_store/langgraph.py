"""A LangGraph checkpoint saver on Helios: :class:`HeliosSaver`.

Each thread is one Helios stream (``helios.langgraph/<thread_id>``) whose events are the
saver's records: a checkpoint put, a task's pending writes, a deletion. The stream's state
machine (in the native core) keeps an index of them in the stream's state; the payloads stay
in the log. A channel value is stored once per version that changed it, as a zstd delta
against the channel's previous value when that is small, so a value that grows by appending
costs about what was appended.

Durability of each write:

- ``put``: critical. The checkpoint is on stable storage (fdatasync) when ``put`` returns;
  concurrent puts from several threads share one sync (group commit). A checkpoint that
  LangGraph was told is saved is never lost.
- ``put_writes``: critical by default (``writes_durability="critical"``), for the same
  reason: an acknowledged pending write (a finished task's output, an interrupt, an error) must
  survive a crash, or a resumed run would redo finished tasks. ``writes_durability="normal"``
  trades that for latency: writes are then synced within the engine's sync window (10 ms by
  default) and at the latest by the next ``put``, since a critical sync covers every record
  before it in the log.
- ``delete_for_runs`` and ``prune``: critical. A deletion is a record in the log, so it is
  never undone by a crash or a reopen.
- ``delete_thread`` and ``copy_thread``: the engine's ``delete_stream`` and ``fork_stream``
  (durable records; a copy shares the source's history instead of copying its bytes).

The log is append-only: deleted checkpoints become unreachable at once and for good, but their
bytes are not reclaimed yet.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from helios_store._native import SaverCore, Store

__all__ = ["HeliosSaver"]


class HeliosSaver(BaseCheckpointSaver[str]):
    """A LangGraph ``BaseCheckpointSaver`` that stores checkpoints in a Helios store.

    Args:
        path: The store's directory (created if missing). Give either ``path`` or ``store``.
        store: An open :class:`helios_store.Store` to share; the saver then does not close it.
        serde: LangGraph's serializer (default: ``JsonPlusSerializer``).
        writes_durability: ``"critical"`` (default) or ``"normal"`` for ``put_writes``.
        cache_bytes: Memory for decoded channel values (default 64 MiB).
        deltas_per_full: How many values of a channel are stored as deltas against one whole
            value before the next one is stored whole (default 32). Deltas are not chained:
            reading any value decodes at most two zstd frames.
        zstd_level: zstd compression level (default 3).
        **options: Options of :class:`helios_store.Store` (``sync_window_ms``,
            ``segment_size_bytes``, ``checkpoint_fanout``, ...), when ``path`` is given.

    Use it as a context manager (``with HeliosSaver(path) as saver:``) or call :meth:`close`.
    After closing, every call raises :class:`helios_store.StoreClosedError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        store: Store | None = None,
        serde: SerializerProtocol | None = None,
        writes_durability: str = "critical",
        cache_bytes: int = 64 << 20,
        deltas_per_full: int = 32,
        zstd_level: int = 3,
        **options: Any,
    ) -> None:
        super().__init__(serde=serde)
        if (path is None) == (store is None):
            raise TypeError("HeliosSaver needs exactly one of `path` or `store`")
        if writes_durability not in ("critical", "normal"):
            raise ValueError(
                f"writes_durability must be 'critical' or 'normal', not {writes_durability!r}"
            )
        if store is None:
            store = Store(path, **options)
            self._owns_store = True
        else:
            if options:
                raise TypeError(f"store options need `path`, not `store`: {sorted(options)}")
            self._owns_store = False
        self.store: Store = store
        self._writes_durability = writes_durability
        self._core = SaverCore(
            store,
            cache_bytes=cache_bytes,
            deltas_per_full=deltas_per_full,
            zstd_level=zstd_level,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the store if this saver opened it (syncing what is buffered), and drops the
        saver's caches. Idempotent."""
        self._core.clear_caches()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> HeliosSaver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> HeliosSaver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

    # -- reads -------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (``checkpoint_id``), or the thread's newest in its
        namespace; ``None`` if there is none."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        return self._load(thread_id, checkpoint_ns, get_checkpoint_id(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (by checkpoint id): of ``config``'s thread (and namespace,
        if it names one; and only ``config``'s ``checkpoint_id``, if it names one), or of every
        thread when ``config`` is ``None``; only those older than ``before``'s checkpoint and
        whose metadata has every key and value of ``filter``; at most ``limit``."""
        if config is not None:
            configurable = config["configurable"]
            thread_ids: list[str] = [str(configurable["thread_id"])]
            checkpoint_ns: str | None = configurable.get("checkpoint_ns")
            only_id = get_checkpoint_id(config)
        else:
            thread_ids = self._core.threads()
            checkpoint_ns = None
            only_id = None
        before_id = get_checkpoint_id(before) if before is not None else None
        remaining = limit
        for thread_id in thread_ids:
            for ns, checkpoint_id in self._core.list(thread_id, checkpoint_ns, before_id):
                if remaining is not None and remaining <= 0:
                    return
                if only_id and checkpoint_id != only_id:
                    continue
                if filter:
                    found = self._core.metadata(thread_id, ns, checkpoint_id)
                    if found is None:
                        continue
                    metadata = self.serde.loads_typed(found)
                    if not all(metadata.get(k) == v for k, v in filter.items()):
                        continue
                tup = self._load(thread_id, ns, checkpoint_id)
                if tup is None:  # Deleted since the listing.
                    continue
                if remaining is not None:
                    remaining -= 1
                yield tup

    def _load(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> CheckpointTuple | None:
        row = self._core.get(thread_id, checkpoint_ns, checkpoint_id)
        if row is None:
            return None
        checkpoint_id, parent_id, checkpoint_typed, metadata_typed, values, writes = row
        loads = self.serde.loads_typed
        checkpoint: Checkpoint = loads(checkpoint_typed)
        checkpoint["channel_values"] = {
            channel: loads((ty, data)) for channel, ty, data in values
        }
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": checkpoint_ns,
                    "checkpoint_id": checkpoint_id,
                }
            },
            checkpoint=checkpoint,
            metadata=loads(metadata_typed),
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": checkpoint_ns,
                        "checkpoint_id": parent_id,
                    }
                }
                if parent_id
                else None
            ),
            pending_writes=[
                (task_id, channel, loads((ty, data))) for task_id, channel, ty, data in writes
            ],
        )

    # -- writes ------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Stores ``checkpoint`` and the values of the channels in ``new_versions`` (critical:
        on stable storage when this returns); returns the config that names it."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        c = checkpoint.copy()
        values: dict[str, Any] = c.pop("channel_values")  # type: ignore[misc]
        dumps = self.serde.dumps_typed
        blobs = []
        for channel, version in new_versions.items():
            if channel in values:
                ty, data = dumps(values[channel])
                blobs.append((channel, str(version), ty, data))
            else:
                blobs.append((channel, str(version), None, b""))
        versions = [(channel, str(v)) for channel, v in checkpoint["channel_versions"].items()]
        full_metadata = get_checkpoint_metadata(config, metadata)
        run_id = full_metadata.get("run_id")
        self._core.put(
            thread_id,
            checkpoint_ns,
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            None if run_id is None else str(run_id),
            dumps(c),
            dumps(full_metadata),
            versions,
            blobs,
            "critical",
        )
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Stores a task's pending writes on the checkpoint ``config`` names. A regular write
        already stored for this task and index is kept as it was (a retried task does not
        duplicate it); special writes (errors, interrupts) replace."""
        configurable = config["configurable"]
        dumps = self.serde.dumps_typed
        rows = []
        for idx, (channel, value) in enumerate(writes):
            ty, data = dumps(value)
            rows.append((WRITES_IDX_MAP.get(channel, idx), channel, ty, data))
        self._core.put_writes(
            str(configurable["thread_id"]),
            configurable.get("checkpoint_ns", ""),
            configurable["checkpoint_id"],
            task_id,
            task_path,
            rows,
            self._writes_durability,
        )

    # -- deletion and copies -----------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Deletes every checkpoint and write of the thread, durably (one record in the log)."""
        thread_id = str(thread_id)
        if self._core.head(thread_id) == 0:
            return
        self.store.delete_stream(SaverCore.stream_name(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Deletes every checkpoint (and its writes) whose metadata ``run_id`` is one of
        ``run_ids``, in every thread, durably (one deletion record per thread touched)."""
        if run_ids:
            self._core.delete_for_runs([str(r) for r in run_ids], "critical")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Makes ``target_thread_id`` a copy of the source thread (every checkpoint, namespace
        and write) that shares the source's history instead of copying it. The target must have
        no records yet (``ValueError``); a source without records copies nothing."""
        source, target = str(source_thread_id), str(target_thread_id)
        at = self._core.head(source)
        if at == 0:
            return
        if self._core.head(target) != 0:
            raise ValueError(
                f"copy_thread: the target thread {target!r} already has records; "
                "delete it first"
            )
        self.store.fork_stream(
            SaverCore.stream_name(source), at, SaverCore.stream_name(target)
        )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: keeps only the newest checkpoint of each namespace of each thread
        (and its writes), one deletion record per thread. ``"delete"``: deletes the threads.

        ``"keep_latest"`` drops the ancestors that LangGraph's beta ``DeltaChannel`` replays;
        do not use it on graphs with delta channels."""
        if strategy == "keep_latest":
            for thread_id in thread_ids:
                self._core.prune_keep_latest(str(thread_id), "critical")
        elif strategy == "delete":
            for thread_id in thread_ids:
                self.delete_thread(thread_id)
        else:
            raise ValueError(f"strategy must be 'keep_latest' or 'delete', not {strategy!r}")

    def get_next_version(self, current: str | None, channel: None) -> str:
        """A version greater than ``current``, with a random suffix: two branches of a thread
        (after time travel) never give the same version to different values."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # -- async -------------------------------------------------------------------------------
    # The native calls release the GIL, so running them on a worker thread keeps the event loop
    # free during syncs and reads.

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`: each tuple is read on a worker thread as it is needed, so a long
        history is never held in memory at once."""
        iterator = self.list(config, filter=filter, before=before, limit=limit)
        while True:
            tup = await asyncio.to_thread(next, iterator, None)
            if tup is None:
                return
            yield tup

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async :meth:`put`."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune`."""
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)
