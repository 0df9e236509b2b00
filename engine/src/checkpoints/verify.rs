//! Offline verification of the checkpoint packs, for [`crate::verify`]: every pack's header,
//! the scan of its checkpoint headers (which is the catalog) against the bytes written and the
//! published end, every checkpoint whole (CRCs, bytecheck, block structure), the machine
//! table and each checkpoint's machine number in it, each pack's index against its scan, and, given a level policy, each
//! checkpoint's level and base against what the policy puts at its version.

use std::path::Path;

use helios_checkpoint::pack::{self, PackEnd, PackHeader, pack_header};
use helios_checkpoint::pack_index::{PackIndexView, pack_index_name};
use helios_checkpoint::{Checkpoint, LevelPolicy};
use helios_log::FsStorage;
use helios_log::storage::Storage as _;

use super::CHECKPOINT_DIR;
use super::machines::{MACHINES_FILE, MachineTable};
use super::recorded_policy::{self, Recorded};
use crate::verify::Finding;

/// What [`verify_packs`] counted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counted {
    pub packs: u64,
    pub checkpoints: u64,
}

/// Checks the packs of the store in `dir`, appending what is wrong to `findings`. With a live
/// writer, the active pack is checked up to its published end only (past it, bytes are being
/// written).
pub(crate) fn verify_packs(
    dir: &Path,
    policy: Option<&LevelPolicy>,
    findings: &mut Vec<Finding>,
) -> Counted {
    let ckpt_dir = dir.join(CHECKPOINT_DIR);
    let mut counted = Counted::default();
    let Ok(names) = FsStorage.list_files(&ckpt_dir) else {
        return counted;
    };
    let mut seqs: Vec<u64> = names
        .iter()
        .filter_map(|n| pack::parse_pack_name(n))
        .collect();
    seqs.sort_unstable();
    // The placement of checkpoints is checked against the policy named, else the one the
    // store records (the one opens use), else the default; not at all against a damaged
    // record (its store's policy is unknown).
    let recorded = match recorded_policy::read(&FsStorage, &ckpt_dir) {
        Recorded::Policy(recorded) => Some(recorded),
        Recorded::Missing => Some(LevelPolicy::default()),
        Recorded::Damaged(why) => {
            findings.push(Finding {
                path: ckpt_dir.join(recorded_policy::POLICY_FILE),
                offset: None,
                reason: why,
            });
            None
        }
    };
    let policy = policy.or(recorded.as_ref());
    let published = read_published(&ckpt_dir, findings);
    // A damaged table is one finding (no open reads the checkpoints it numbered); with a whole
    // one, a number it lacks is a checkpoint no table ever named. A number whose name was
    // lost to earlier damage (an empty name) is a dead copy, like a superseded one.
    let (machines, damage) = MachineTable::load(&FsStorage, &ckpt_dir);
    let table_whole = damage.is_none();
    if let Some(damage) = damage {
        findings.push(Finding {
            path: ckpt_dir.join(MACHINES_FILE),
            offset: None,
            reason: damage,
        });
    }
    let store_id = crate::store_id::read(&FsStorage, dir);
    for seq in seqs {
        let path = ckpt_dir.join(pack::pack_file_name(seq));
        let mut finding = |offset: Option<u64>, reason: String| {
            findings.push(Finding {
                path: path.clone(),
                offset,
                reason,
            });
        };
        let bytes = match FsStorage.map_readonly(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                finding(None, format!("cannot be read: {e}"));
                continue;
            }
        };
        counted.packs += 1;
        match PackHeader::decode(&path, &bytes) {
            Ok(header) if header.seq != seq => {
                finding(Some(0), format!("its header says pack {}", header.seq));
                continue;
            }
            Ok(header) if store_id.is_some_and(|id| id != header.store_id) => {
                finding(
                    Some(0),
                    format!(
                        "written by another store (store id {:#018x}; this store's is \
                         {:#018x}): an open reads none of its checkpoints",
                        header.store_id,
                        store_id.unwrap_or(0)
                    ),
                );
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                finding(Some(0), e.to_string());
                continue;
            }
        }
        let len = bytes.len() as u64;
        // The active pack is checked up to its published end: past it, a writer may be at
        // work, or a crash left a torn tail that the next open cuts (derived data, no loss).
        let until = match published {
            Some(end) if end.seq == seq => end.end,
            _ => len,
        };
        if until > len {
            finding(
                Some(len),
                format!("the pack is {len} bytes long, but {until} were published"),
            );
        }
        let scan = pack::scan(&path, &bytes, pack_header::LEN as u64, until);
        if let Some((offset, reason)) = &scan.stopped {
            finding(
                Some(*offset),
                format!("{reason}; the checkpoints after it are not read (an open rebuilds them)"),
            );
        } else if scan.end < until.min(len) && published.is_some_and(|p| p.seq == seq) {
            finding(
                Some(scan.end),
                format!("the checkpoints end here, before the published end {until}"),
            );
        }
        for entry in &scan.entries {
            counted.checkpoints += 1;
            let mut name = path.clone().into_os_string();
            name.push(format!("@{}", entry.offset));
            match Checkpoint::open_in(&bytes, entry.offset, entry.len, name.into()) {
                Ok(_) => {}
                Err(e) => finding(Some(entry.offset), e.to_string()),
            }
            let number = entry.meta.machine;
            if table_whole && number != 0 && machines.name(number).is_none() {
                finding(
                    Some(entry.offset),
                    format!(
                        "built by machine number {number}, which the machine table does not \
                         name: no open reads it (a writer rebuilds it)"
                    ),
                );
            }
            if let Some(policy) = policy
                && let Some(reason) = policy.misplaced(&entry.meta)
            {
                finding(Some(entry.offset), reason);
            }
        }
        verify_index(&ckpt_dir, seq, (&scan.entries, scan.end), findings);
    }
    counted
}

/// Checks pack `seq`'s index, if it has one, against `scanned` (the pack's checkpoints, in
/// pack order, and where the scan ended). One that ends past the scan's end is not checked
/// against it: an open does not use it (past the published end), or the scan stopped at
/// damage, reported as such. An open reads an index's entries as hints (each checkpoint is checked at its
/// first read), so an index whose entries are damaged can hide checkpoints: a reader reads
/// around them and a writer rebuilds them, and only this check names the index.
fn verify_index(
    ckpt_dir: &Path,
    seq: u64,
    (scanned, scan_end): (&[helios_checkpoint::pack::PackEntry], u64),
    findings: &mut Vec<Finding>,
) {
    let path = ckpt_dir.join(pack_index_name(seq));
    let Ok(bytes) = FsStorage.map_readonly(&path) else {
        return;
    };
    let mut finding = |offset: Option<u64>, reason: &str| {
        findings.push(Finding {
            path: path.clone(),
            offset,
            reason: reason.to_owned(),
        });
    };
    let Some(view) = PackIndexView::open(&bytes[..], seq) else {
        finding(
            Some(0),
            "not an index of this pack (magic, header checksum, version, pack number or              length): an open scans the pack instead",
        );
        return;
    };
    let Some(mut indexed) = view.decode_all() else {
        finding(
            Some(64),
            "its entries fail their checksum or do not decode: an open reads them as hints, so              the checkpoints they hide are read around (a writer rebuilds them); `helios repair`              rebuilds the checkpoints and their indexes",
        );
        return;
    };
    if view.end() > scan_end {
        return;
    }
    let key = |e: &helios_checkpoint::pack::PackEntry| (e.meta.stream_id, e.meta.version, e.offset);
    let mut expected: Vec<_> = scanned
        .iter()
        .filter(|e| e.offset + e.len <= view.end())
        .copied()
        .collect();
    expected.sort_unstable_by_key(key);
    indexed.sort_unstable_by_key(key);
    if indexed != expected {
        finding(
            Some(64),
            &format!(
                "its {} entries are not the {} checkpoints a scan of the pack finds up to its                  end {}",
                indexed.len(),
                expected.len(),
                view.end()
            ),
        );
    }
}

/// The packs' published end, if there is one (an unreadable one is a finding).
fn read_published(ckpt_dir: &Path, findings: &mut Vec<Finding>) -> Option<PackEnd> {
    let path = ckpt_dir.join(pack::PUBLISHED_END_FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let end = PackEnd::decode(&bytes);
            if end.is_none() {
                findings.push(Finding {
                    path,
                    offset: Some(0),
                    reason: "not a published end (wrong length, magic or checksum)".into(),
                });
            }
            end
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            findings.push(Finding {
                path,
                offset: None,
                reason: format!("cannot be read: {e}"),
            });
            None
        }
    }
}
