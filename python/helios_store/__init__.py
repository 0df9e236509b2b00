"""Helios for Python: an embeddable event-sourced storage engine.

A :class:`Store` holds streams of events (bytes) in an append-only log, with a durability
class chosen per append (``"critical"``: on stable storage when the call returns, concurrent
critical appends sharing one sync; ``"normal"``: synced within a short window), the state of
any stream at any version (:meth:`Store.view`), and speculative in-memory branches
(:meth:`Store.fork`, :meth:`Store.append_branch`, :meth:`Store.promote`).

Streams use the built-in key-value state machine: an event is ``set KEY VALUE`` or
``del KEY`` (build them with :func:`kv_set` and :func:`kv_del`), and a stream's state maps
keys to values. Any other bytes can be appended too; reading the state at or past an event the
machine refuses raises :class:`ReplayError`.

Errors are subclasses of :class:`HeliosError`, one per kind of engine error. The engine
releases the GIL during I/O and syncs, so Python threads appending at once share syncs.

The LangGraph checkpoint saver lives in :mod:`helios_store.langgraph`.

Example::

    from helios_store import Store, kv_set

    with Store("/tmp/my-store") as store:
        store.append("cart-1", [kv_set(b"color", b"red")], durability="critical", expected=0)
        assert store.get("cart-1", b"color") == b"red"
"""

from __future__ import annotations

from helios_store._native import (
    SAVER_STREAM_PREFIX,
    Appended,
    BranchMemoryFullError,
    CheckpointError,
    ConflictError,
    CorruptRecordError,
    EmptyAppendError,
    Event,
    HeliosError,
    InvalidDurabilityError,
    InvalidOptionsError,
    InvalidStreamNameError,
    LockedError,
    LogError,
    MetadataError,
    NotAStoreError,
    PromotionConflictError,
    Reader,
    ReplayError,
    Store,
    StoreClosedError,
    StreamInfo,
    UnknownBranchError,
    UnknownStreamError,
    VersionPastHeadError,
    View,
)

__all__ = [
    "SAVER_STREAM_PREFIX",
    "Appended",
    "BranchMemoryFullError",
    "CheckpointError",
    "ConflictError",
    "CorruptRecordError",
    "EmptyAppendError",
    "Event",
    "HeliosError",
    "InvalidDurabilityError",
    "InvalidOptionsError",
    "InvalidStreamNameError",
    "LockedError",
    "LogError",
    "MetadataError",
    "NotAStoreError",
    "PromotionConflictError",
    "Reader",
    "ReplayError",
    "Store",
    "StoreClosedError",
    "StreamInfo",
    "UnknownBranchError",
    "UnknownStreamError",
    "VersionPastHeadError",
    "View",
    "kv_del",
    "kv_set",
]


def kv_set(key: bytes, value: bytes) -> bytes:
    """The key-value event that sets ``key`` to ``value``.

    ``key`` must be non-empty and contain no space or newline; ``value`` may be any bytes.
    """
    _check_key(key)
    if not isinstance(value, bytes):
        raise TypeError(f"value must be bytes, not {type(value).__name__}")
    return b"set " + key + b" " + value


def kv_del(key: bytes) -> bytes:
    """The key-value event that deletes ``key``."""
    _check_key(key)
    return b"del " + key


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes):
        raise TypeError(f"key must be bytes, not {type(key).__name__}")
    if not key or b" " in key or b"\n" in key:
        raise ValueError(f"a key must be non-empty, without spaces or newlines: {key!r}")
