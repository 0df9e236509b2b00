//! Isolation of failing events: a rejected or panicking event leaves the view as it was.

use helios_checkpoint::LevelPolicy;
use helios_replay::kv;
use helios_replay::{KvMachine, Rejected, ReplayError, StateHandle, StateMachine, View, replay};

use crate::support::{DeltaStyle, kv_history};

/// The kv machine, except that it panics on `set boom ...`.
struct Fragile;

impl StateMachine for Fragile {
    fn name(&self) -> &str {
        "fragile"
    }

    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
        KvMachine.apply(event, state)?;
        // The panic comes after the machine wrote through the handle.
        assert!(!event.starts_with(b"set boom "), "boom");
        Ok(())
    }
}

#[test]
fn failing_events_leave_the_view_unchanged() {
    let ops: Vec<(u8, u8, u8)> = (0..20u8).map(|i| (i % 4, i % 8, i)).collect();
    let history = kv_history(&ops);
    let policy = LevelPolicy::new(4, 2).expect("valid");
    let view = history
        .view(&Fragile, policy, 18, DeltaStyle::Minimal)
        .expect("valid");
    let before = view.to_map();
    let base = view.base().clone();
    let mut overlay = view.overlay().clone();

    // A rejected event: the overlay, and so the view, is as before, and the error says which
    // event and why.
    let error =
        replay(&Fragile, &base, &mut overlay, ["set a 9", "del"]).expect_err("`del` without a key");
    assert_eq!(
        error,
        ReplayError::Rejected {
            event_index: 1,
            machine: "fragile".into(),
            reason: Rejected::new(kv::KvError::UnknownCommand.to_string()),
        }
    );
    let mut expected = before.clone();
    expected.insert(b"a".to_vec(), b"9".to_vec());
    assert_eq!(View::new(base.clone(), overlay.clone()).to_map(), expected);

    // A panic after the machine wrote: nothing of the event is kept.
    let error = replay(&Fragile, &base, &mut overlay, ["set boom 1"]).expect_err("panics");
    let ReplayError::Panicked {
        event_index,
        machine,
        message,
    } = &error
    else {
        panic!("expected a panic error, got {error}");
    };
    assert_eq!((*event_index, machine.as_str()), (0, "fragile"));
    assert_eq!(message, "boom");
    let after = View::new(base, overlay);
    assert_eq!(after.to_map(), expected);
    assert_eq!(after.get(b"boom"), None);
    assert_eq!(after.report().events_replayed, 3);
}
