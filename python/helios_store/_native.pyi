"""Type stubs of the native module (``python/src``); docstrings are on the classes at run time."""

from __future__ import annotations

import os
from typing import Literal, Sequence

Durability = Literal["critical", "normal", "speculative"]

SAVER_STREAM_PREFIX: str

class HeliosError(Exception): ...
class ConflictError(HeliosError):
    stream: str
    expected: int
    actual: int
class UnknownStreamError(HeliosError):
    stream: str
class InvalidStreamNameError(HeliosError):
    stream: str
class EmptyAppendError(HeliosError): ...
class VersionPastHeadError(HeliosError):
    stream: str
    version: int
    head: int
class LockedError(HeliosError):
    path: str
class NotAStoreError(HeliosError):
    path: str
class InvalidOptionsError(HeliosError):
    option: str
    reason: str
class UnknownBranchError(HeliosError):
    branch: int
class BranchMemoryFullError(HeliosError):
    needed_bytes: int
    used_bytes: int
    budget_bytes: int
class PromotionConflictError(HeliosError):
    branch: int
    stream: str
    base: int
    head: int
class InvalidDurabilityError(HeliosError): ...
class ReplayError(HeliosError):
    stream: str
    version: int
class LogError(HeliosError): ...
class MetadataError(HeliosError): ...
class CheckpointError(HeliosError): ...
class StoreClosedError(HeliosError): ...
class CorruptRecordError(HeliosError): ...

class Appended:
    first: int
    last: int
    lsn: int

class Event:
    stream_id: int
    version: int
    lsn: int
    timestamp_us: int
    durability: Literal["critical", "normal"]
    payload: bytes

class StreamInfo:
    name: str
    id: int
    head: int

class View:
    @property
    def version(self) -> int: ...
    @property
    def events_replayed(self) -> int: ...
    @property
    def layers(self) -> list[tuple[int, int]]: ...
    def get(self, key: bytes) -> bytes | None: ...
    def __contains__(self, key: bytes) -> bool: ...
    def __getitem__(self, key: bytes) -> bytes: ...
    def __len__(self) -> int: ...
    def items(self) -> list[tuple[bytes, bytes]]: ...
    def prefix(self, prefix: bytes) -> list[tuple[bytes, bytes]]: ...
    def range(
        self, start: bytes | None = None, end: bytes | None = None
    ) -> list[tuple[bytes, bytes]]: ...
    def to_dict(self) -> dict[bytes, bytes]: ...

class Store:
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create_if_missing: bool = True,
        background_threads: bool = True,
        metrics: bool = True,
        segment_size_bytes: int | None = None,
        sync_poll_window_us: int = 0,
        sync_window_ms: int | None = None,
        sync_window_bytes: int | None = None,
        checkpoint_fanout: int | None = None,
        checkpoint_levels: int | None = None,
        branch_memory_bytes: int | None = None,
        branch_memory_policy: Literal["evict", "refuse"] | None = None,
    ) -> None: ...
    @property
    def path(self) -> os.PathLike[str]: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, *args: object) -> bool: ...
    def append(
        self,
        stream: str,
        events: Sequence[bytes],
        durability: Durability = "critical",
        expected: int | None = None,
    ) -> Appended: ...
    def sync(self) -> int: ...
    def head(self, stream: str) -> int | None: ...
    def streams(self) -> list[StreamInfo]: ...
    def read(self, stream: str, start: int = 1, end: int | None = None) -> list[Event]: ...
    def events_from(self, lsn: int = 0, limit: int | None = None) -> list[Event]: ...
    def view(self, stream: str, version: int | None = None) -> View: ...
    def get(self, stream: str, key: bytes, version: int | None = None) -> bytes | None: ...
    def state(self, stream: str, version: int | None = None) -> dict[bytes, bytes]: ...
    def fork_stream(self, source: str, at: int, target: str) -> None: ...
    def delete_stream(self, stream: str) -> None: ...
    def fork(self, stream: str, at: int) -> int: ...
    def fork_branch(self, parent: int, at: int) -> int: ...
    def append_branch(
        self, branch: int, events: Sequence[bytes], expected: int | None = None
    ) -> tuple[int, int]: ...
    def view_branch(self, branch: int, version: int | None = None) -> View: ...
    def promote(
        self, branch: int, upto: int | None = None, durability: Durability = "critical"
    ) -> Appended: ...
    def discard(self, branch: int) -> None: ...
    def prune(self, stream: str) -> int: ...
    def pin(self, branch: int, pinned: bool = True) -> None: ...
    def branch_info(self, branch: int) -> dict[str, int | str | bool | None]: ...
    def branches(self, stream: str) -> list[int]: ...
    def branch_stats(self) -> dict[str, int]: ...
    def sync_checkpoints(self) -> dict[str, object]: ...
    def checkpoint_stats(self) -> dict[str, object]: ...
    def metrics(self) -> dict[str, dict[str, int | float | str]]: ...
    def metrics_prometheus(self) -> str: ...
    def reset_metrics(self) -> None: ...

Typed = tuple[str, bytes]

class SaverCore:
    def __init__(
        self,
        store: Store,
        *,
        cache_bytes: int = ...,
        deltas_per_full: int = 32,
        zstd_level: int = 3,
    ) -> None: ...
    @staticmethod
    def stream_name(thread_id: str) -> str: ...
    def put(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        parent_id: str | None,
        run_id: str | None,
        checkpoint: Typed,
        metadata: Typed,
        versions: list[tuple[str, str]],
        blobs: list[tuple[str, str, str | None, bytes]],
        durability: Literal["critical", "normal"] = "critical",
    ) -> None: ...
    def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: list[tuple[int, str, str, bytes]],
        durability: Literal["critical", "normal"] = "critical",
    ) -> None: ...
    def get(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None = None
    ) -> (
        tuple[
            str,
            str | None,
            Typed,
            Typed,
            list[tuple[str, str, bytes]],
            list[tuple[str, str, str, bytes]],
        ]
        | None
    ): ...
    def metadata(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Typed | None: ...
    def list(
        self, thread_id: str, checkpoint_ns: str | None = None, before: str | None = None
    ) -> list[tuple[str, str]]: ...
    def threads(self) -> list[str]: ...
    def head(self, thread_id: str) -> int: ...
    def delete_checkpoints(
        self,
        thread_id: str,
        checkpoints: list[tuple[str, str]],
        durability: Literal["critical", "normal"] = "critical",
    ) -> int: ...
    def prune_keep_latest(
        self, thread_id: str, durability: Literal["critical", "normal"] = "critical"
    ) -> int: ...
    def delete_for_runs(
        self, run_ids: list[str], durability: Literal["critical", "normal"] = "critical"
    ) -> int: ...
    def value_encodings(self, thread_id: str) -> dict[str, int]: ...
    def cache_stats(self) -> tuple[int, int]: ...
