//! Which versions carry a checkpoint, at which level, and which layers a read at a version
//! goes through.
//!
//! With fanout `f` and `L` levels, version `v > 0` has a level-`i` checkpoint (1-based) when
//! `v % f^i == 0`, using the highest such `i <= L`. Level `L` holds full states; lower levels
//! hold deltas against the checkpoint of the level above. A read at `v` starts from the
//! level-`i` base `b_i = v - v % f^i` for every level, skipping a level whose base equals the
//! base of the level above, and replays the events `b_1 + 1 ..= v` (at most `f - 1` of them).

/// Why a policy cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Fanout below 2.
    #[error("checkpoint fanout must be at least 2, got {0}")]
    FanoutTooSmall(u64),
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

/// The checkpoint level policy: fanout and number of levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelPolicy {
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
            fanout: 10,
            levels: 3,
        }
    }
}

impl LevelPolicy {
    /// A policy with `fanout` and `levels`.
    ///
    /// # Errors
    /// A fanout below 2, zero levels, or `fanout ^ levels` beyond `u64`.
    pub fn new(fanout: u64, levels: u32) -> Result<LevelPolicy, PolicyError> {
        if fanout < 2 {
            return Err(PolicyError::FanoutTooSmall(fanout));
        }
        if levels == 0 {
            return Err(PolicyError::NoLevels);
        }
        if fanout.checked_pow(levels).is_none() {
            return Err(PolicyError::Overflow { fanout, levels });
        }
        Ok(LevelPolicy { fanout, levels })
    }

    /// The fanout.
    #[must_use]
    pub fn fanout(&self) -> u64 {
        self.fanout
    }

    /// The number of levels.
    #[must_use]
    pub fn levels(&self) -> u32 {
        self.levels
    }

    /// Events between two checkpoints of `level`: `fanout ^ level`.
    #[must_use]
    pub fn interval(&self, level: u32) -> u64 {
        // Cannot overflow: level <= levels and fanout ^ levels was checked in `new`.
        self.fanout.pow(level.min(self.levels))
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

    /// The checkpoint layers a read at `version` uses, finest first, and the number of events
    /// replayed on top of the finest one.
    #[must_use]
    pub fn layers(&self, version: u64) -> (Vec<Layer>, u64) {
        let mut layers = Vec::with_capacity(self.levels as usize);
        let mut above: Option<u64> = None;
        for level in (1..=self.levels).rev() {
            let base = version - version % self.interval(level);
            if base > 0 && above != Some(base) {
                layers.push(Layer { level, base });
            }
            above = Some(base);
        }
        layers.reverse();
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
    fn invalid_policies_are_rejected() {
        assert_eq!(LevelPolicy::new(1, 3), Err(PolicyError::FanoutTooSmall(1)));
        assert_eq!(LevelPolicy::new(10, 0), Err(PolicyError::NoLevels));
        assert!(matches!(
            LevelPolicy::new(1 << 32, 3),
            Err(PolicyError::Overflow { .. })
        ));
    }

    #[test]
    fn layers_are_bounded_and_each_is_a_checkpoint() {
        fn prop(fanout: u8, levels: u8, version: u32) -> TestResult {
            let Ok(p) = LevelPolicy::new(u64::from(fanout % 30), u32::from(levels % 5)) else {
                return TestResult::discard();
            };
            let v = u64::from(version);
            let (layers, replayed) = p.layers(v);
            let ok = replayed < p.fanout()
                && layers.len() <= p.levels() as usize
                && layers
                    .iter()
                    .all(|l| l.base <= v && p.level_at(l.base).is_some_and(|lv| lv >= l.level))
                && layers
                    .windows(2)
                    .all(|w| w[0].base > w[1].base && w[0].level < w[1].level)
                && layers
                    .first()
                    .map_or(v - replayed == 0, |l| l.base == v - replayed);
            TestResult::from_bool(ok)
        }
        QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(u8, u8, u32) -> TestResult);
    }
}
