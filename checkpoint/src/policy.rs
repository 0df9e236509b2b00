//! Which versions carry a checkpoint, at which level, what each is relative to, and which
//! layers a read at a version goes through.
//!
//! With fanout `f` and `L` levels, version `v > 0` has a level-`i` checkpoint (1-based) when
//! `v % f^i == 0`, using the highest such `i <= L`. Level `L` holds full states; lower levels
//! hold deltas against the checkpoint of the level above, at `v - v % f^(i+1)`. (With a first
//! interval `g` apart from the fanout, [`LevelPolicy::with_first`], read `g * f^(i-1)` for
//! `f^i` throughout: the anchor is at `g`, and a read replays at most `g - 1` events.)
//!
//! The first top-level window (versions below `f^L`) has no checkpoint above it: its "level
//! above" would be the empty state, and a delta against the empty state is a full copy of the
//! state. So with `L >= 2` the stream's first checkpoint, the *anchor* at version `f`, holds a
//! full state, and every other checkpoint of that window is a delta against the anchor. A
//! stream that starts with a large state (a bulk import) then pays for one full copy in its
//! first window instead of one per checkpoint (`2 (f - 1)` of them with the defaults).
//!
//! Level 0 ([`HEAVY_LEVEL`]) is outside that grid: an engine may write the full state at any
//! version, for example after an event that changed many keys, so that no read replays it. Such
//! a checkpoint is no delta's base and no layer of [`LevelPolicy::layers`].
//!
//! A read at `v` starts from the level-`i` base `b_i = v - v % f^i` for every level, skipping
//! a level whose base equals the base of the level above or is 0; in the first window it adds
//! the anchor below them. It then replays the events `b_1 + 1 ..= v` (at most `f - 1`).

use crate::format::{CheckpointKind, CheckpointMeta};

/// The level of a full state written off the grid of levels (see the module documentation).
pub const HEAVY_LEVEL: u32 = 0;

/// The most events a read replays on top of its checkpoints under any policy (once the builder
/// has caught up): `fanout - 1`, so [`LevelPolicy::new`] refuses a fanout above
/// `REPLAY_MAX + 1`.
pub const REPLAY_MAX: u64 = 24;

/// Why a policy cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Fanout below 2.
    #[error("checkpoint fanout must be at least 2, got {0}")]
    FanoutTooSmall(u64),
    /// Fanout above [`REPLAY_MAX`] + 1: reads would replay more than [`REPLAY_MAX`] events.
    #[error(
        "checkpoint fanout must be at most {max}, got {0}: a read replays up to fanout - 1 \
         events after its checkpoints, and never more than {REPLAY_MAX}",
        max = REPLAY_MAX + 1
    )]
    FanoutTooLarge(u64),
    /// A first interval (see [`LevelPolicy::with_first`]) outside 2 to [`REPLAY_MAX`] + 1.
    #[error(
        "the first checkpoint interval must be from 2 to {max}, got {0}: a read replays up to \
         interval - 1 events after its checkpoints, and never more than {REPLAY_MAX}",
        max = REPLAY_MAX + 1
    )]
    FirstInterval(u64),
    /// No levels.
    #[error("at least one checkpoint level is needed")]
    NoLevels,
    /// `fanout ^ levels` overflows `u64`.
    #[error("fanout {fanout} with {levels} levels overflows 64-bit versions")]
    Overflow {
        /// The fanout.
        fanout: u64,
        /// The level count.
        levels: u32,
    },
}

/// The checkpoint level policy: the interval of the finest level, the fanout above it, and the
/// number of levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelPolicy {
    first: u64,
    fanout: u64,
    levels: u32,
}

/// One layer a read goes through: the checkpoint at `base` of `level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The level (1 is the finest, `levels` the full one).
    pub level: u32,
    /// The version of the checkpoint.
    pub base: u64,
}

impl Default for LevelPolicy {
    /// Fanout 10, 3 levels: checkpoints every 10, 100 and 1000 events.
    fn default() -> Self {
        LevelPolicy {
            first: 10,
            fanout: 10,
            levels: 3,
        }
    }
}

impl std::fmt::Display for LevelPolicy {
    /// `every 10 events, fanout 10, 3 levels` (the default).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "every {} events, fanout {}, {} levels",
            self.first, self.fanout, self.levels
        )
    }
}

impl LevelPolicy {
    /// A policy with `fanout` and `levels`.
    ///
    /// # Errors
    /// A fanout below 2 or above [`REPLAY_MAX`] + 1, zero levels, or `fanout ^ levels` beyond
    /// `u64`.
    pub fn new(fanout: u64, levels: u32) -> Result<LevelPolicy, PolicyError> {
        if fanout < 2 {
            return Err(PolicyError::FanoutTooSmall(fanout));
        }
        if fanout > REPLAY_MAX + 1 {
            return Err(PolicyError::FanoutTooLarge(fanout));
        }
        if levels == 0 {
            return Err(PolicyError::NoLevels);
        }
        LevelPolicy::with_first(fanout, fanout, levels)
    }

    /// A policy whose finest level checkpoints every `first` events and each level above every
    /// `fanout` checkpoints of the one below: level `i` every `first * fanout^(i - 1)` events.
    /// [`LevelPolicy::new`] is `first == fanout`. A small fanout above a first interval of 10
    /// keeps the replay bound of 9 while each delta repeats fewer changes of the level above
    /// (more layers per read, fewer bytes: docs/PERFORMANCE.md measures one).
    ///
    /// # Errors
    /// A first interval outside 2 to [`REPLAY_MAX`] + 1, a fanout below 2, zero levels, or a
    /// top interval beyond `u64`.
    pub fn with_first(first: u64, fanout: u64, levels: u32) -> Result<LevelPolicy, PolicyError> {
        if !(2..=REPLAY_MAX + 1).contains(&first) {
            return Err(PolicyError::FirstInterval(first));
        }
        if fanout < 2 {
            return Err(PolicyError::FanoutTooSmall(fanout));
        }
        if levels == 0 {
            return Err(PolicyError::NoLevels);
        }
        if fanout
            .checked_pow(levels)
            .and_then(|top| top.checked_mul(first))
            .is_none()
        {
            return Err(PolicyError::Overflow { fanout, levels });
        }
        Ok(LevelPolicy {
            first,
            fanout,
            levels,
        })
    }

    /// Events between two checkpoints of the finest level: at most [`REPLAY_MAX`] + 1, and one
    /// more than the most events a read replays on top of its checkpoints.
    #[must_use]
    pub fn first_interval(&self) -> u64 {
        self.first
    }

    /// The fanout of the levels above the finest (for [`LevelPolicy::new`], also the finest
    /// level's interval).
    #[must_use]
    pub fn fanout(&self) -> u64 {
        self.fanout
    }

    /// The number of levels.
    #[must_use]
    pub fn levels(&self) -> u32 {
        self.levels
    }

    /// Events between two checkpoints of `level`: `first * fanout ^ (level - 1)` (`fanout ^
    /// level` for [`LevelPolicy::new`]); 1 for level 0.
    #[must_use]
    pub fn interval(&self, level: u32) -> u64 {
        // Cannot overflow: level <= levels and first * fanout ^ levels was checked.
        match level.min(self.levels) {
            0 => 1,
            level => self.first * self.fanout.pow(level - 1),
        }
    }

    /// The level of the checkpoint taken at `version`, if any.
    #[must_use]
    pub fn level_at(&self, version: u64) -> Option<u32> {
        if version == 0 {
            return None;
        }
        (1..=self.levels)
            .rev()
            .find(|&level| version.is_multiple_of(self.interval(level)))
    }

    /// The anchor: the version of the first checkpoint, which holds a full state although its
    /// level is 1 (see the module documentation). `None` with a single level, where every
    /// checkpoint is full anyway.
    #[must_use]
    pub fn anchor(&self) -> Option<u64> {
        (self.levels >= 2).then_some(self.first)
    }

    /// Whether the checkpoint at `version` (of `level`) holds a full state: the top level, the
    /// anchor and level 0 do.
    #[must_use]
    pub fn is_full(&self, version: u64, level: u32) -> bool {
        self.base_of(version, level) == 0
    }

    /// The version of the checkpoint that the checkpoint at `version` of `level` is a delta
    /// against; 0 when it holds a full state. For a delta, the checkpoint of the level above
    /// (`version - version % fanout^(level + 1)`), or the anchor in the first window.
    #[must_use]
    pub fn base_of(&self, version: u64, level: u32) -> u64 {
        if level == HEAVY_LEVEL || level >= self.levels || self.anchor() == Some(version) {
            return 0;
        }
        match self.natural_base(version, level) {
            0 => self.first, // The anchor: `levels >= 2` here.
            base => base,
        }
    }

    /// The checkpoint of the level above `version` of `level`, ignoring the anchor: what
    /// stores written before the anchor existed (same file format) used as a delta's base, with
    /// 0 for the empty state. Readers accept those files: see `Store::check_meta` in the engine.
    #[must_use]
    pub fn natural_base(&self, version: u64, level: u32) -> u64 {
        if level >= self.levels {
            0
        } else {
            version - version % self.interval(level + 1)
        }
    }

    /// Why a checkpoint with header `meta` is not where this policy places one, if it is not:
    /// off its version's level (a full state after a heavy event, level 0, lies off every
    /// level's grid), or not of the kind and against the base that level has there. Accepted
    /// besides: a first-window delta against the empty state (written before the anchor
    /// existed; it holds every key changed since version 0, so it reads correctly stacked on
    /// the anchor, and as the anchor it is the full state), and a full state where a delta
    /// would have held every key.
    #[must_use]
    pub fn misplaced(&self, meta: &CheckpointMeta) -> Option<String> {
        let (version, level) = (meta.version, u32::from(meta.level));
        let expected_level = self.level_at(version).unwrap_or(HEAVY_LEVEL);
        if level != expected_level {
            return Some(format!(
                "a checkpoint of level {level} at version {version}, where the level policy \
                 ({self}) puts {}",
                self.level_at(version)
                    .map_or_else(|| "none on its grid".to_owned(), |l| format!("level {l}"))
            ));
        }
        let base = self.base_of(version, level);
        let kind = if base == 0 {
            CheckpointKind::Full
        } else {
            CheckpointKind::Delta
        };
        let as_expected = meta.kind == kind && meta.base_version == base;
        let legacy = level != HEAVY_LEVEL
            && self.natural_base(version, level) == 0
            && meta.kind == CheckpointKind::Delta
            && meta.base_version == 0;
        let full_for_delta = meta.kind == CheckpointKind::Full && meta.base_version == 0;
        (!(as_expected || legacy || full_for_delta)).then(|| {
            format!(
                "a {:?} against version {} at version {version}, where the level policy \
                 ({self}) puts a {kind:?} against version {base}",
                meta.kind, meta.base_version
            )
        })
    }

    /// The last version of the range of checkpoints stacked on the one at `version` of `level`
    /// (exclusive): up to the next checkpoint of its level or above, or to the end of the first
    /// window for the anchor.
    #[must_use]
    pub fn dependents_end(&self, version: u64, level: u32) -> u64 {
        if self.anchor() == Some(version) {
            self.interval(self.levels)
        } else {
            version + self.interval(level)
        }
    }

    /// The checkpoint layers a read at `version` uses, finest first, and the number of events
    /// replayed on top of the finest one. Each layer but the last is a delta against the next
    /// ([`LevelPolicy::base_of`]); the last holds a full state.
    #[must_use]
    pub fn layers(&self, version: u64) -> (Vec<Layer>, u64) {
        let mut layers = Vec::with_capacity(self.levels as usize + 1);
        let mut above: Option<u64> = None;
        for level in (1..=self.levels).rev() {
            let base = version - version % self.interval(level);
            if base > 0 && above != Some(base) {
                layers.push(Layer { level, base });
            }
            above = Some(base);
        }
        layers.reverse();
        if let (Some(anchor), Some(bottom)) = (self.anchor(), layers.last())
            && bottom.base != anchor
            && version < self.interval(self.levels)
        {
            layers.push(Layer {
                level: 1,
                base: anchor,
            });
        }
        let replayed = version % self.interval(1);
        (layers, replayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};

    #[test]
    fn default_levels() {
        let p = LevelPolicy::default();
        assert_eq!(p.level_at(0), None);
        assert_eq!(p.level_at(7), None);
        assert_eq!(p.level_at(10), Some(1));
        assert_eq!(p.level_at(300), Some(2));
        assert_eq!(p.level_at(5000), Some(3));
        let (layers, replayed) = p.layers(2345);
        assert_eq!(
            layers,
            vec![
                Layer {
                    level: 1,
                    base: 2340
                },
                Layer {
                    level: 2,
                    base: 2300
                },
                Layer {
                    level: 3,
                    base: 2000
                }
            ]
        );
        assert_eq!(replayed, 5);
        let (layers, replayed) = p.layers(2300);
        assert_eq!(
            layers,
            vec![
                Layer {
                    level: 2,
                    base: 2300
                },
                Layer {
                    level: 3,
                    base: 2000
                }
            ]
        );
        assert_eq!(replayed, 0);
        assert_eq!(p.layers(9), (vec![], 9));
    }

    #[test]
    fn the_first_window_stacks_on_the_anchor() {
        let p = LevelPolicy::default();
        assert_eq!(p.anchor(), Some(10));
        let l = |level, base| Layer { level, base };
        assert_eq!(p.layers(15), (vec![l(1, 10)], 5));
        assert_eq!(p.layers(20), (vec![l(1, 20), l(1, 10)], 0));
        assert_eq!(p.layers(257), (vec![l(1, 250), l(2, 200), l(1, 10)], 7));
        assert_eq!(p.layers(1003), (vec![l(3, 1000)], 3));
        assert!(p.is_full(10, 1) && p.is_full(2000, 3) && !p.is_full(20, 1));
        assert_eq!(p.base_of(20, 1), 10);
        assert_eq!(p.base_of(900, 2), 10);
        assert_eq!(p.base_of(990, 1), 900);
        assert_eq!(p.base_of(2340, 1), 2300);
        assert_eq!(p.base_of(2300, 2), 2000);
        assert_eq!(p.natural_base(20, 1), 0);
        assert_eq!(p.dependents_end(10, 1), 1000);
        assert_eq!(p.dependents_end(2300, 2), 2400);
        let single = LevelPolicy::new(10, 1).expect("policy");
        assert_eq!(single.anchor(), None);
        assert_eq!(single.layers(25), (vec![l(1, 20)], 5));
        assert!(single.is_full(10, 1));
        assert!(p.is_full(13, HEAVY_LEVEL) && p.base_of(2345, HEAVY_LEVEL) == 0);
    }

    #[test]
    fn a_first_interval_apart_from_the_fanout() {
        let p = LevelPolicy::with_first(10, 3, 4).expect("policy");
        assert_eq!(
            (1..=4).map(|l| p.interval(l)).collect::<Vec<_>>(),
            [10, 30, 90, 270]
        );
        assert_eq!(p.anchor(), Some(10));
        assert_eq!(p.level_at(60), Some(2));
        assert_eq!(p.level_at(90), Some(3));
        assert_eq!(p.level_at(95), None);
        // At 217: the level-2 checkpoint at 210 is a delta against the level-3 one at 180,
        // itself a delta against the anchor (the first window has no top-level checkpoint).
        let (layers, replayed) = p.layers(217);
        assert_eq!(replayed, 7);
        assert_eq!(
            layers,
            [
                Layer {
                    level: 2,
                    base: 210
                },
                Layer {
                    level: 3,
                    base: 180
                },
                Layer { level: 1, base: 10 },
            ]
        );
        assert_eq!(p.base_of(210, 2), 180);
        assert_eq!(p.base_of(180, 3), 10);
        assert_eq!(p.base_of(270, 4), 0, "the top level is full");
        assert_eq!(LevelPolicy::with_first(10, 10, 3), LevelPolicy::new(10, 3));
        assert_eq!(
            LevelPolicy::with_first(26, 3, 4),
            Err(PolicyError::FirstInterval(26))
        );
        assert_eq!(
            LevelPolicy::with_first(1, 3, 4),
            Err(PolicyError::FirstInterval(1))
        );
        assert!(
            LevelPolicy::with_first(10, 1000, 3).is_ok(),
            "the fanout above is free"
        );
    }

    #[test]
    fn invalid_policies_are_rejected() {
        assert_eq!(LevelPolicy::new(1, 3), Err(PolicyError::FanoutTooSmall(1)));
        assert_eq!(LevelPolicy::new(10, 0), Err(PolicyError::NoLevels));
        assert!(matches!(
            LevelPolicy::new(25, 14),
            Err(PolicyError::Overflow { .. })
        ));
        // The replay bound: a fanout of 25 replays at most 24 events, one of 26 is refused.
        assert!(LevelPolicy::new(25, 3).is_ok());
        assert_eq!(
            LevelPolicy::new(26, 3),
            Err(PolicyError::FanoutTooLarge(26))
        );
        assert_eq!(
            LevelPolicy::new(1 << 32, 3),
            Err(PolicyError::FanoutTooLarge(1 << 32))
        );
    }

    #[test]
    fn layers_are_bounded_and_each_is_a_checkpoint() {
        fn prop(first: u8, fanout: u8, levels: u8, version: u32) -> TestResult {
            // Half the policies have their first interval apart from the fanout.
            let (fanout, levels) = (u64::from(fanout % 30), u32::from(levels % 5));
            let first = if first.is_multiple_of(2) {
                fanout
            } else {
                u64::from(first % 30)
            };
            let Ok(p) = LevelPolicy::with_first(first, fanout, levels) else {
                return TestResult::discard();
            };
            let v = u64::from(version);
            let (layers, replayed) = p.layers(v);
            // Every layer is a checkpoint of its level, each is a delta against the next one
            // and the last holds a full state: the stack is exactly the chain of bases.
            let ok = replayed < p.first_interval()
                && layers.len() <= p.levels() as usize
                && layers
                    .iter()
                    .all(|l| l.base <= v && p.level_at(l.base) == Some(l.level))
                && layers
                    .windows(2)
                    .all(|w| p.base_of(w[0].base, w[0].level) == w[1].base)
                && layers.last().is_none_or(|l| p.is_full(l.base, l.level))
                && layers
                    .first()
                    .map_or(v - replayed == 0, |l| l.base == v - replayed);
            TestResult::from_bool(ok)
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(u8, u8, u8, u32) -> TestResult);
    }
}
