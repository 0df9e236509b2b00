//! The built-in key-value event format: one event is one text line, either `set KEY VALUE` or
//! `del KEY`. `KEY` is a run of non-space bytes; `VALUE` is everything after the single space
//! that follows the key (it may contain spaces, and may be empty).
//!
//! [`KvMachine`] is the state machine for these events: `set` puts the value under the key,
//! `del` deletes the key. It is what `helios append` writes by default.

use std::collections::BTreeMap;

use crate::machine::{Rejected, StateHandle, StateMachine};

/// The built-in state machine for key-value events: `set KEY VALUE` puts, `del KEY` deletes
/// (deleting an absent key is accepted and changes nothing visible).
///
/// An event that does not parse is [`Rejected`] with the [`KvError`] message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvMachine;

impl KvMachine {
    /// The machine's name in reports and errors.
    pub const NAME: &'static str = "kv";
}

impl StateMachine for KvMachine {
    fn name(&self) -> &str {
        KvMachine::NAME
    }

    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
        match parse(event).map_err(|error| Rejected::new(error.to_string()))? {
            KvEvent::Set { key, value } => state.put(key, value),
            KvEvent::Del { key } => state.delete(key),
        }
        Ok(())
    }
}

/// One key-value event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvEvent<'a> {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Removes `key`.
    Del {
        /// The key.
        key: &'a [u8],
    },
}

/// Why bytes are not a key-value event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// Neither `set` nor `del`.
    #[error("a key-value event starts with `set ` or `del `")]
    UnknownCommand,
    /// No key after the command.
    #[error("a key-value event needs a non-empty key")]
    MissingKey,
    /// `set KEY` without the space before the value.
    #[error("`set KEY VALUE` needs a space between the key and the value")]
    MissingValue,
    /// `del KEY extra`.
    #[error("`del KEY` takes nothing after the key")]
    TrailingBytes,
}

/// Parses one event.
///
/// # Errors
/// [`KvError`] when `bytes` is not `set KEY VALUE` or `del KEY`.
pub fn parse(bytes: &[u8]) -> Result<KvEvent<'_>, KvError> {
    let (command, rest) = if let Some(rest) = bytes.strip_prefix(b"set ") {
        (true, rest)
    } else if let Some(rest) = bytes.strip_prefix(b"del ") {
        (false, rest)
    } else {
        return Err(KvError::UnknownCommand);
    };
    let key_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let (key, after) = rest.split_at(key_len);
    if key.is_empty() {
        return Err(KvError::MissingKey);
    }
    if command {
        let value = after.strip_prefix(b" ").ok_or(KvError::MissingValue)?;
        Ok(KvEvent::Set { key, value })
    } else if after.is_empty() {
        Ok(KvEvent::Del { key })
    } else {
        Err(KvError::TrailingBytes)
    }
}

/// Encodes an event (the inverse of [`parse`]).
#[must_use]
pub fn encode(event: &KvEvent<'_>) -> Vec<u8> {
    match event {
        KvEvent::Set { key, value } => [b"set ".as_slice(), key, b" ", value].concat(),
        KvEvent::Del { key } => [b"del ".as_slice(), key].concat(),
    }
}

/// Applies one event to a map: the reference every faster read path is checked against, one
/// event at a time (for models that keep the state of every version).
///
/// # Errors
/// The event does not parse; `state` is then unchanged.
pub fn fold_into(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, event: &[u8]) -> Result<(), KvError> {
    match parse(event)? {
        KvEvent::Set { key, value } => {
            state.insert(key.to_vec(), value.to_vec());
        }
        KvEvent::Del { key } => {
            state.remove(key);
        }
    }
    Ok(())
}

/// Folds events into a map from scratch: the reference every faster read path is checked
/// against.
///
/// # Errors
/// The first event that does not parse, with its index.
pub fn fold<'a>(
    events: impl IntoIterator<Item = &'a [u8]>,
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, (usize, KvError)> {
    let mut state = BTreeMap::new();
    for (i, bytes) in events.into_iter().enumerate() {
        fold_into(&mut state, bytes).map_err(|e| (i, e))?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::QuickCheck;

    #[test]
    fn parses_both_commands() {
        assert_eq!(
            parse(b"set k hello world"),
            Ok(KvEvent::Set {
                key: b"k",
                value: b"hello world"
            })
        );
        assert_eq!(
            parse(b"set k "),
            Ok(KvEvent::Set {
                key: b"k",
                value: b""
            })
        );
        assert_eq!(parse(b"del k"), Ok(KvEvent::Del { key: b"k" }));
        assert_eq!(parse(b"put k v"), Err(KvError::UnknownCommand));
        assert_eq!(parse(b"set "), Err(KvError::MissingKey));
        assert_eq!(parse(b"set k"), Err(KvError::MissingValue));
        assert_eq!(parse(b"del k v"), Err(KvError::TrailingBytes));
    }

    #[test]
    fn fold_applies_in_order() {
        let events: [&[u8]; 4] = [b"set a 1", b"set b 2", b"del a", b"set b 3"];
        let state = fold(events).expect("valid");
        assert_eq!(state.len(), 1);
        assert_eq!(
            state.get(b"b".as_slice()).map(Vec::as_slice),
            Some(b"3".as_slice())
        );
        let bad: [&[u8]; 2] = [b"set a 1", b"oops"];
        assert_eq!(fold(bad), Err((1, KvError::UnknownCommand)));
    }

    #[test]
    fn kv_machine_applies_and_rejects() {
        use crate::{Base, Overlay, ReplayError, View, replay};

        let view = View::replay(&KvMachine, Base::new(), ["set a 1", "set b 2 3", "del a"])
            .expect("valid events");
        assert_eq!(view.get(b"a"), None);
        assert_eq!(view.get(b"b"), Some(&b"2 3"[..]));

        let mut overlay = Overlay::new();
        let error = replay(
            &KvMachine,
            &Base::new(),
            &mut overlay,
            ["set a 1", "del a b"],
        )
        .expect_err("trailing bytes");
        assert_eq!(
            error,
            ReplayError::Rejected {
                event_index: 1,
                machine: "kv".into(),
                reason: Rejected::new(KvError::TrailingBytes.to_string()),
            }
        );
        assert_eq!(overlay.events_replayed(), 1);
    }

    #[test]
    fn encode_parse_round_trip() {
        fn prop(key: Vec<u8>, value: Vec<u8>, set: bool) -> bool {
            let key: Vec<u8> = key.into_iter().filter(|&b| b != b' ').collect();
            if key.is_empty() {
                return true;
            }
            let event = if set {
                KvEvent::Set {
                    key: &key,
                    value: &value,
                }
            } else {
                KvEvent::Del { key: &key }
            };
            parse(&encode(&event)) == Ok(event)
        }
        QuickCheck::new()
            .tests(500)
            .quickcheck(prop as fn(Vec<u8>, Vec<u8>, bool) -> bool);
    }
}
