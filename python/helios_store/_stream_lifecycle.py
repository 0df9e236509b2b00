"""SHIM: the two engine calls that ``HeliosSaver.copy_thread`` and ``delete_thread`` need.

The engine does not have them yet. Until it does, each function below raises
``NotImplementedError``; the saver's copy and whole-thread deletion go through here and
nowhere else, and nothing fakes them (no copying of records, no hiding of names).

What each call must do (the contract the saver is written against):

``Engine::delete_stream(&self, stream) -> Result<()>``
    Appends a durable record (critical: on stable storage when the call returns) that deletes
    the stream. From the call's return, the name is unknown: ``head`` and ``stream`` return
    ``None``, ``streams()`` does not list it, ``view``/``read`` raise ``UnknownStreamError``,
    and the same holds after a reopen or a crash. An append to the same name afterwards starts
    a new, empty stream with a new stream id (the saver's cache of decoded values is keyed by
    stream id). Streams forked from the deleted one keep their shared history: their reads of
    versions ``1..=at`` keep working. Bytes need not be reclaimed.

``Engine::fork_stream(&self, source, at, target) -> Result<StreamId>``
    Durably creates ``target`` (which must not exist) whose versions ``1..=at`` are the
    source's, shared rather than copied: ``read(target, 1..=at)`` returns the source's events,
    ``view(target, v)`` for ``v <= at`` equals ``view(source, v)`` (same state machine, chosen by
    the target's name), and appends continue at ``at + 1``. Later appends to either stream do
    not show in the other; deleting the source later does not affect the target.

When the engine has them, ``Store`` gains ``delete_stream(stream)`` and
``fork_stream(source, at, target)`` bindings (a few lines in ``python/src/store.rs``, each
calling the engine with the GIL released) and these functions call them: nothing else in the
saver changes.
"""

from __future__ import annotations

from helios_store._native import Store


def delete_stream(store: Store, stream: str) -> None:
    """Deletes ``stream`` durably (see the module docs for the contract)."""
    native = getattr(store, "delete_stream", None)
    if native is None:
        raise NotImplementedError(
            "deleting a thread needs Engine::delete_stream, which the Helios engine does not "
            "have yet"
        )
    native(stream)


def fork_stream(store: Store, source: str, at: int, target: str) -> None:
    """Creates ``target`` sharing ``source``'s versions ``1..=at`` (see the module docs)."""
    native = getattr(store, "fork_stream", None)
    if native is None:
        raise NotImplementedError(
            "copying a thread needs Engine::fork_stream, which the Helios engine does not "
            "have yet"
        )
    native(source, at, target)
