//! Running the sweep: every setting measured in turn, each checked to read the same values as
//! the first, and one of them measured again at the end (the noise check).

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use super::TuneError;
use super::measure::{self, Clock, Measured, Setting};
use super::workload::Workload;
use crate::error::CliError;

/// Measures every setting in turn, under a progress bar (drawn only when stderr is a
/// terminal), checking that each reads the same values as the first; then measures one of them
/// again, the noise check (see [`control_index`]), returned last.
pub(super) fn sweep(
    workload: &Workload,
    samples: &[measure::Sample],
    settings: &[Setting],
    scratch: &Path,
    clock: Clock,
) -> Result<(Vec<Measured>, Measured), CliError> {
    let progress = ProgressBar::new(settings.len() as u64 + 1).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let with_maps = varies_maps(settings);
    let control = settings[control_index(settings)];
    let mut measured: Vec<Measured> = Vec::with_capacity(settings.len());
    for (index, &setting) in settings.iter().chain([&control]).enumerate() {
        let again = if index == settings.len() {
            " again"
        } else {
            ""
        };
        let label = setting.label(with_maps);
        let result = measure::measure(workload, samples, setting, scratch, clock, &mut |phase| {
            progress.set_message(format!("{label}{again}: {phase}"));
        })
        .and_then(|result| {
            if let Some(first) = measured.first() {
                check_same_answers(workload, samples, first, &result)?;
            }
            Ok(result)
        });
        match result {
            Ok(result) => measured.push(result),
            Err(error) => {
                progress.abandon();
                return Err(error);
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let control = measured
        .pop()
        .ok_or_else(|| TuneError::Empty("no setting was measured".to_owned()))?;
    Ok((measured, control))
}

/// The setting measured twice: the engine's default if the grid has it, else the last one
/// (the cheapest to build: the largest fanout and levels). The difference between its two
/// measurements, minutes apart, is how much the machine alone moves the numbers.
pub(super) fn control_index(settings: &[Setting]) -> usize {
    settings
        .iter()
        .position(Setting::is_engine_default)
        .unwrap_or(settings.len().saturating_sub(1))
}

/// Whether the grid has more than one `--maps-max` (then labels name it).
pub(super) fn varies_maps(settings: &[Setting]) -> bool {
    settings.iter().any(|s| s.maps_max != settings[0].maps_max)
}

/// Every setting must read the same values as the first one: checkpoints change how a state is
/// rebuilt, never what it is.
fn check_same_answers(
    workload: &Workload,
    samples: &[measure::Sample],
    first: &Measured,
    other: &Measured,
) -> Result<(), CliError> {
    let differs = first
        .digests
        .iter()
        .zip(&other.digests)
        .position(|(a, b)| a != b);
    match differs {
        None => Ok(()),
        Some(index) => {
            let sample = &samples[index];
            let stream = &workload.streams[sample.stream];
            let keys: Vec<String> = sample
                .keys
                .iter()
                .map(|&k| String::from_utf8_lossy(&stream.keys[k]).into_owned())
                .collect();
            Err(CliError::WorkloadCheck {
                stream: stream.name.clone(),
                reason: format!(
                    "at version {}, settings {} and {} read different values for the keys {}",
                    sample.version,
                    first.setting.label(true),
                    other.setting.label(true),
                    keys.join(", ")
                ),
            })
        }
    }
}
