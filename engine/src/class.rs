//! Write classes: how hard a commit works to survive, and the hook that maps a caller's own
//! commit kinds to them.

use std::fmt;

/// How hard an append works to survive a crash. Chosen per commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Returns only after the events are on stable storage (fdatasync). Concurrent critical
    /// appends share one sync (group commit). Never lost once acknowledged.
    Critical,
    /// Returns after a buffered write; a background flusher syncs it within the sync window.
    /// After a crash at most that window is lost, and what survives is a prefix of the log.
    Normal,
    /// Never touches the disk: the events live in a branch, in memory, until they are
    /// promoted (with one of the other two classes) or discarded. Lost in a crash, by design.
    Speculative,
}

impl Durability {
    /// The class the log records for a persistent append, `None` for [`Durability::Speculative`].
    #[must_use]
    pub fn persistent(self) -> Option<helios_log::RecordClass> {
        match self {
            Durability::Critical => Some(helios_log::RecordClass::Critical),
            Durability::Normal => Some(helios_log::RecordClass::Normal),
            Durability::Speculative => None,
        }
    }
}

impl From<helios_log::RecordClass> for Durability {
    fn from(class: helios_log::RecordClass) -> Durability {
        match class {
            helios_log::RecordClass::Critical => Durability::Critical,
            helios_log::RecordClass::Normal => Durability::Normal,
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Critical => "critical",
            Durability::Normal => "normal",
            Durability::Speculative => "speculative",
        })
    }
}

/// Maps a caller's commit kinds (such as `"rollout"` or `"move"`) to write classes, for
/// [`crate::Engine::commit`]. Set one with [`crate::EngineBuilder::classifier`].
pub trait Classifier: Send + Sync {
    /// The class of a commit of `kind` to `stream`.
    fn classify(&self, stream: &str, kind: &str) -> Durability;
}

/// The default [`Classifier`]: kinds named for search work are speculative, kinds named for
/// decisions are critical, everything else is normal.
///
/// | kinds | class |
/// |---|---|
/// | `speculative`, `rollout`, `simulation`, `expansion`, `explore`, `trial` | [`Durability::Speculative`] |
/// | `critical`, `decision`, `move`, `commit`, `checkpoint`, `payment` | [`Durability::Critical`] |
/// | anything else | [`Durability::Normal`] |
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl Classifier for DefaultClassifier {
    fn classify(&self, _stream: &str, kind: &str) -> Durability {
        match kind {
            "speculative" | "rollout" | "simulation" | "expansion" | "explore" | "trial" => {
                Durability::Speculative
            }
            "critical" | "decision" | "move" | "commit" | "checkpoint" | "payment" => {
                Durability::Critical
            }
            _ => Durability::Normal,
        }
    }
}

impl<F> Classifier for F
where
    F: Fn(&str, &str) -> Durability + Send + Sync,
{
    fn classify(&self, stream: &str, kind: &str) -> Durability {
        self(stream, kind)
    }
}
