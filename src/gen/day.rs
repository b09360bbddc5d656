//! One simulated day of mail on an existing spool: ~1% new message files, ~0.3% deleted, ~0.2%
//! moved between a user's folders; each touched folder gets its `cyrus.index` rewritten and its
//! `cyrus.cache` appended, as Cyrus does; and ~5% of the other folders get flag changes (read, flagged),
//! which rewrite their `cyrus.index` in place without touching the directory.

use super::cyrus::{self, IndexRecord, FLAG_FLAGGED, FLAG_SEEN};
use super::folder::{Folder, Mailbox, INBOX};
use super::rng::Rng;
use super::spool::{display_name, originate, Origin, Shape};
use super::{GenError, IoContext, BASE_EPOCH, DAY_SECS};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Fractions of the message files touched per day.
const NEW_FRACTION: f64 = 0.01;
const DELETE_FRACTION: f64 = 0.003;
const MOVE_FRACTION: f64 = 0.002;
/// Chance that a folder's flags change in a day (a user reading or flagging mail in it).
const READ_FRACTION: f64 = 0.05;

/// What [`simulate_day`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayStats {
    /// Message files in the spool before the day.
    pub messages_before: u64,
    /// Distinct new messages, and the files they made (shared messages land in several mailboxes).
    pub new_messages: u64,
    pub new_files: u64,
    pub new_bytes: u64,
    pub deleted: u64,
    pub moved: u64,
    pub touched_folders: u64,
    /// Folders whose flags changed (their index rewritten even without new mail).
    pub flagged_folders: u64,
}

/// The shape of the day's new mail (the initial spool's own shape is not stored in it).
fn day_shape() -> Shape {
    Shape {
        median_body_size: 6144,
        attachment_ratio: 0.03,
        max_attachment_size: 3 << 20,
        shared_ratio: 0.2,
    }
}

fn sorted_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, GenError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        if entry.file_type().ctx("stat", &entry.path())?.is_dir() {
            if let Some(name) = entry.file_name().to_str() {
                out.push((name.to_string(), entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads the spool's users and folders in a fixed (sorted) order.
fn load(root: &Path) -> Result<Vec<Mailbox>, GenError> {
    let mut mailboxes = Vec::new();
    for (domain, ddir) in sorted_dirs(root)? {
        let users = ddir.join("user");
        if !users.is_dir() {
            continue;
        }
        for (local, udir) in sorted_dirs(&users)? {
            let mut folders = vec![Folder::open(udir.clone(), "INBOX".to_string())?];
            for (name, fdir) in sorted_dirs(&udir)? {
                if fdir.join(cyrus::INDEX_FILE).is_file() {
                    folders.push(Folder::open(fdir, name)?);
                }
            }
            mailboxes.push(Mailbox {
                display: display_name(&local),
                address: format!("{local}@{domain}"),
                folders,
            });
        }
    }
    Ok(mailboxes)
}

/// Applies day `day` (dates `BASE_EPOCH + day` days) to the spool at `root`. Deterministic: the
/// same spool, seed and day give the same result.
pub fn simulate_day(root: &Path, seed: u64, day: u32) -> Result<DayStats, GenError> {
    let mut mailboxes = load(root)?;
    let mut rng = Rng::derive(seed, 0xda7_0000_0000 + u64::from(day));
    let day_start = BASE_EPOCH + i64::from(day) * DAY_SECS;
    let day_end = day_start + DAY_SECS - 1;

    // Every message as (mailbox, folder, position in the index).
    let mut all = Vec::new();
    for (m, mb) in mailboxes.iter().enumerate() {
        for (f, folder) in mb.folders.iter().enumerate() {
            for r in 0..folder.index.records.len() {
                all.push((m, f, r));
            }
        }
    }
    let n = all.len() as u64;
    let mut stats = DayStats {
        messages_before: n,
        ..DayStats::default()
    };
    if mailboxes.is_empty() {
        return Ok(stats);
    }
    let deletes = (n as f64 * DELETE_FRACTION).round() as u64;
    let moves = (n as f64 * MOVE_FRACTION).round() as u64;
    let mut chosen = BTreeSet::new();
    let mut order = Vec::new();
    while (order.len() as u64) < (deletes + moves).min(n) {
        let i = rng.below(n) as usize;
        if chosen.insert(i) {
            order.push(i);
        }
    }
    // Records leaving each folder, by uid; applied after all moves have read their source.
    let mut gone: BTreeMap<(usize, usize), BTreeSet<u32>> = BTreeMap::new();
    for (k, &i) in order.iter().enumerate() {
        let (m, f, r) = all[i];
        let record = mailboxes[m].folders[f].index.records[r].clone();
        let src = mailboxes[m].folders[f].message_path(record.uid);
        gone.entry((m, f)).or_default().insert(record.uid);
        mailboxes[m].folders[f].touched = true;
        mailboxes[m].folders[f].names_changed = true;
        if (k as u64) < deletes || mailboxes[m].folders.len() < 2 {
            std::fs::remove_file(&src).ctx("delete", &src)?;
            stats.deleted += 1;
            continue;
        }
        let mut dest = rng.below(mailboxes[m].folders.len() as u64 - 1) as usize;
        if dest >= f {
            dest += 1;
        }
        let cache_path = mailboxes[m].folders[f].dir.join(cyrus::CACHE_FILE);
        let payload = cyrus::read_cache_record(&cache_path, record.cache_offset)?;
        let to = &mut mailboxes[m].folders[dest];
        let uid = to.reserve_uid();
        let dst = to.message_path(uid);
        std::fs::rename(&src, &dst).ctx("move", &src)?;
        to.add_record(
            IndexRecord {
                uid,
                last_updated: day_end,
                ..record
            },
            &payload,
        );
        stats.moved += 1;
    }
    for ((m, f), uids) in gone {
        let folder = &mut mailboxes[m].folders[f];
        folder.index.records.retain(|r| !uids.contains(&r.uid));
    }

    // New mail, spread over the day in delivery order.
    let target_new = ((n as f64 * NEW_FRACTION).round() as u64).max(1);
    let shape = day_shape();
    let users = mailboxes.len() as u64;
    let slot = DAY_SECS / target_new as i64;
    while stats.new_files < target_new {
        let primary = rng.below(users) as usize;
        let folder = match mailboxes[primary].folder("Sent") {
            Some(sent) if rng.chance(0.1) => sent,
            _ => INBOX,
        };
        let date = day_start
            + (stats.new_files as i64 * slot).min(DAY_SECS - 1)
            + rng.below(slot.max(1) as u64) as i64;
        let msg_seed =
            Rng::derive(seed ^ 0xda7, u64::from(day) << 32 | stats.new_messages).next_u64();
        let d = originate(
            Origin {
                rng: &mut rng,
                shape: &shape,
                msg_seed,
                date: date.min(day_end),
            },
            &mut mailboxes,
            primary,
            folder,
            |r: &mut Rng| r.below(users) as usize,
        )?;
        stats.new_messages += 1;
        stats.new_files += d.files;
        stats.new_bytes += d.bytes * d.files;
    }

    // Users read and flag mail: Cyrus rewrites the index of each folder a client changed flags
    // in, new mail or not (~550 folders a day on the `full` spool, as a live Cyrus).
    for mb in &mut mailboxes {
        for f in mb.folders.iter_mut() {
            if f.index.records.is_empty() || !rng.chance(READ_FRACTION) {
                continue;
            }
            let n = f.index.records.len() as u64;
            for _ in 0..(1 + rng.below(n.min(20))) {
                let r = &mut f.index.records[rng.below(n) as usize];
                r.flags |= FLAG_SEEN;
                if rng.chance(0.1) {
                    r.flags ^= FLAG_FLAGGED;
                }
                r.last_updated = day_start + rng.below(DAY_SECS as u64) as i64;
            }
            f.touched = true;
            stats.flagged_folders += 1;
        }
    }
    for mb in &mut mailboxes {
        for f in mb.folders.iter_mut().rev() {
            if f.touched {
                f.index.generation += 1;
                stats.touched_folders += 1;
                f.flush(day_end)?;
            }
        }
    }
    Ok(stats)
}
