//! The numbers the commands take, checked before anything runs: each numeric option has an
//! accepted range, and a value outside it (nan, infinity, a negative number, a fraction where a
//! count is due, or a value too large for the time or memory it implies) is refused by clap with
//! one message that names the option, the value, the range and why the bound is where it is.
//!
//! Every command declares its numeric options through the parsers here ([`Count`], [`Seconds`],
//! [`Positive`], [`parse_seed`]), so that every command gets the same rules and the same messages.
//! Clap prints them as `invalid value 'VALUE' for '--OPTION <N>': MESSAGE` and exits with
//! status 2, like every other error.
//!
//! Every numeric argument also says `allow_negative_numbers = true`, so that `--keys -1` reaches
//! the parser (which refuses it with the range) rather than clap's argument splitter (which
//! would call `-1` an unexpected argument).
//!
//! Bounds that exist because of memory are stated in the units of the option with what one
//! unit costs (measured on this code), so that the limit can be checked against a machine.

use std::time::Duration;

/// A whole-number option: its accepted range and what the bound protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
    /// What the option counts, as in "expected {what} from MIN to MAX" ("a number of keys").
    pub what: &'static str,
    /// Why `max` is the largest value, or `""` when it is only the type's.
    pub bound: &'static str,
}

impl Count {
    /// Parses `text` as a value of this option.
    ///
    /// # Errors
    /// A message (without the option's name, which clap adds) when `text` is not a whole
    /// number in `min..=max`.
    pub fn parse(&self, text: &str) -> Result<u64, String> {
        let trimmed = text.trim();
        let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if let Ok(value) = digits.parse::<u64>() {
            return if value > self.max {
                Err(self.too_large(trimmed))
            } else if value < self.min {
                Err(format!(
                    "{value} is less than {}; {}",
                    self.min,
                    self.range()
                ))
            } else {
                Ok(value)
            };
        }
        if trimmed.starts_with('-') && trimmed.len() > 1 {
            return Err(format!("it is negative; {}", self.range()));
        }
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            // Only digits, and yet no u64: past 2^64 - 1.
            return Err(self.too_large(trimmed));
        }
        Err(format!("it is not a whole number; {}", self.range()))
    }

    /// A clap value parser for this option, as a `u64`.
    pub fn parser(self) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
        move |text| self.parse(text)
    }

    /// A clap value parser for this option, as a `u32` (`max` must fit in one).
    pub fn parser_u32(
        self,
    ) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync + 'static {
        debug_assert!(u32::try_from(self.max).is_ok(), "{self:?}");
        move |text| {
            let value = self.parse(text)?;
            u32::try_from(value).map_err(|_| self.too_large(text.trim()))
        }
    }

    /// A clap value parser for this option, as a `usize` (`max` must fit in one).
    pub fn parser_usize(
        self,
    ) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
        move |text| {
            let value = self.parse(text)?;
            usize::try_from(value).map_err(|_| self.too_large(text.trim()))
        }
    }

    fn range(&self) -> String {
        format!("expected {} from {} to {}", self.what, self.min, self.max)
    }

    fn too_large(&self, text: &str) -> String {
        if self.bound.is_empty() {
            format!("{text} is more than {}; {}", self.max, self.range())
        } else {
            format!(
                "{text} is more than the limit of {} ({}); {}",
                self.max,
                self.bound,
                self.range()
            )
        }
    }
}

/// A duration in seconds: a finite, non-negative number up to a limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds {
    /// Largest accepted value, in seconds.
    pub max: f64,
    /// Why `max` is the largest value.
    pub bound: &'static str,
}

impl Seconds {
    /// Parses `text` as a duration.
    ///
    /// # Errors
    /// A message when `text` is not a number of seconds in `0..=max`.
    pub fn parse(&self, text: &str) -> Result<Duration, String> {
        let range = format!("expected a number of seconds from 0 to {}", self.max);
        let value = parse_finite(text).map_err(|what| format!("it is {what}; {range}"))?;
        if value < 0.0 {
            return Err(format!("it is negative; {range}"));
        }
        if value > self.max {
            return Err(format!(
                "{} is more than the limit of {} seconds ({}); {range}",
                text.trim(),
                self.max,
                self.bound
            ));
        }
        // Cannot fail: `value` is finite and in 0..=max, far below Duration's limit.
        Duration::try_from_secs_f64(value).map_err(|e| format!("{e}; {range}"))
    }

    /// A clap value parser for this option.
    pub fn parser(
        self,
    ) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
        move |text| self.parse(text)
    }
}

/// A number above 0, finite, up to a limit (the budgets of `tune`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Positive {
    /// Largest accepted value.
    pub max: f64,
    /// The unit, plural ("microseconds").
    pub unit: &'static str,
    /// Why `max` is the largest value.
    pub bound: &'static str,
}

impl Positive {
    /// Parses `text` as a budget.
    ///
    /// # Errors
    /// A message when `text` is not a number in `(0, max]`.
    pub fn parse(&self, text: &str) -> Result<f64, String> {
        let range = format!(
            "expected a number of {} above 0 and at most {}",
            self.unit, self.max
        );
        let value = parse_finite(text).map_err(|what| format!("it is {what}; {range}"))?;
        if value <= 0.0 {
            return Err(format!("a budget must be above 0; {range}"));
        }
        if value > self.max {
            return Err(format!(
                "{} is more than the limit of {} {} ({}); {range}",
                text.trim(),
                self.max,
                self.unit,
                self.bound
            ));
        }
        Ok(value)
    }

    /// A clap value parser for this option.
    pub fn parser(self) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
        move |text| self.parse(text)
    }
}

/// `text` as a finite number, or what it is instead ("not a number", "infinite").
fn parse_finite(text: &str) -> Result<f64, &'static str> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_nan() => Err("not a number"),
        Ok(value) if value.is_infinite() => Err("infinite"),
        Ok(value) => Ok(value),
        Err(_) => Err("not a number"),
    }
}

/// Parses a seed: any whole number from 0 to 2^64 - 1, decimal or hexadecimal with `0x`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    helios_workloads::parse_seed(text.trim()).map_err(|_| {
        format!(
            "it is not a seed; expected a whole number from 0 to {} (decimal, or hexadecimal \
             with 0x)",
            u64::MAX
        )
    })
}

/// A version of a stream: any whole number (0 is the empty state, before the first event).
pub const VERSION: Count = Count {
    min: 0,
    max: u64::MAX,
    what: "a version (a whole number)",
    bound: "",
};

/// `--segment-size-bytes`: the size of each log segment a command creates.
pub const SEGMENT_SIZE_BYTES: Count = Count {
    min: helios_log::MIN_SEGMENT_SIZE_BYTES,
    max: 1 << 30,
    what: "a number of bytes",
    bound: "1 GiB: every new segment file is written whole with zeros and synced before use, \
            and a spare one is kept ready, so each costs its size in disk writes up front",
};

/// The longest run of the commands that run for a time (`workload`, `demo`): one day.
pub const RUN_SECONDS: Seconds = Seconds {
    max: 86_400.0,
    bound: "one day",
};

/// Simulations of the MCTS search (`demo --simulations`, `tune --simulations`).
pub const SIMULATIONS: Count = Count {
    min: 1,
    max: 5_000_000,
    what: "a number of simulations",
    bound: "the search keeps about 130 bytes per simulation in memory, about 650 MB at the \
            limit, and takes minutes there",
};

/// Simulations per move of the MCTS search (`demo --promote-every`, `tune --promote-every`): any
/// number works (past `--simulations`, no move is played).
pub const PROMOTE_EVERY: Count = Count {
    min: 1,
    max: u32::MAX as u64,
    what: "a number of simulations per move",
    bound: "",
};

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: Count = Count {
        min: 1,
        max: 1000,
        what: "a number of keys",
        bound: "memory",
    };

    #[test]
    fn counts_refuse_every_hostile_number_with_the_range() {
        assert_eq!(KEYS.parse("12"), Ok(12));
        assert_eq!(KEYS.parse("+12"), Ok(12));
        for (text, start) in [
            ("nan", "it is not a whole number; "),
            ("inf", "it is not a whole number; "),
            ("1e30", "it is not a whole number; "),
            ("1.5", "it is not a whole number; "),
            ("", "it is not a whole number; "),
            ("-1", "it is negative; "),
            ("-0", "it is negative; "),
            ("0", "0 is less than 1; "),
            ("1001", "1001 is more than the limit of 1000 (memory); "),
            (
                "18446744073709551615",
                "18446744073709551615 is more than the limit",
            ),
            (
                "18446744073709551616",
                "18446744073709551616 is more than the limit",
            ),
        ] {
            let message = KEYS.parse(text).expect_err(text);
            assert!(message.starts_with(start), "{text}: {message}");
            assert!(
                message.ends_with("expected a number of keys from 1 to 1000"),
                "{text}: {message}"
            );
        }
        let narrow = Count {
            max: u64::from(u32::MAX),
            ..KEYS
        };
        assert_eq!(narrow.parser_u32()("4294967295"), Ok(u32::MAX));
    }

    #[test]
    fn seconds_refuse_nan_infinity_negatives_and_past_the_limit() {
        let seconds = Seconds {
            max: 60.0,
            bound: "a minute",
        };
        assert_eq!(seconds.parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds.parse("0"), Ok(Duration::ZERO));
        assert_eq!(seconds.parse("-0"), Ok(Duration::ZERO));
        for (text, start) in [
            ("nan", "it is not a number; "),
            ("NaN", "it is not a number; "),
            ("inf", "it is infinite; "),
            ("-inf", "it is infinite; "),
            (
                "1e20",
                "1e20 is more than the limit of 60 seconds (a minute); ",
            ),
            ("-1", "it is negative; "),
            ("soon", "it is not a number; "),
        ] {
            let message = seconds.parse(text).expect_err(text);
            assert!(message.starts_with(start), "{text}: {message}");
            assert!(
                message.ends_with("expected a number of seconds from 0 to 60"),
                "{text}: {message}"
            );
        }
    }

    #[test]
    fn budgets_are_above_zero_and_finite() {
        let budget = Positive {
            max: 10.0,
            unit: "microseconds",
            bound: "the clock",
        };
        assert_eq!(budget.parse("2.5"), Ok(2.5));
        for text in ["0", "-1", "nan", "inf", "11"] {
            let message = budget.parse(text).expect_err(text);
            assert!(
                message.ends_with("expected a number of microseconds above 0 and at most 10"),
                "{text}: {message}"
            );
        }
    }

    #[test]
    fn seeds_name_their_range() {
        assert_eq!(parse_seed("0x10"), Ok(16));
        for text in ["1e30", "-1", "nan", "18446744073709551616"] {
            let message = parse_seed(text).expect_err(text);
            assert!(
                message.starts_with(
                    "it is not a seed; expected a whole number from 0 to 18446744073709551615"
                ),
                "{message}"
            );
        }
    }
}
