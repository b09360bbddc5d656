//! The initial mail spool: [`SpoolSpec`] and its presets, the population of users, and the
//! delivery of one generated message to its mailboxes (reused by `day.rs` for the daily churn).

use super::cyrus;
use super::folder::{Folder, Mailbox, INBOX};
use super::mail::{compose, MailSpec};
use super::rng::Rng;
use super::words::{DOMAINS, EXTERNAL_DOMAINS, FIRST_NAMES, LAST_NAMES};
use super::{prepare_empty_root, set_mode, set_times, GenError, IoContext, BASE_EPOCH, DAY_SECS};
use std::path::Path;

/// What to generate. The presets are the supported sizes; tests may tweak single fields.
#[derive(Clone, Debug, PartialEq)]
pub struct SpoolSpec {
    pub seed: u64,
    pub users: u32,
    /// Users are spread round-robin over this many mail domains.
    pub domains: u32,
    /// Mean number of message files per user (all folders); actual mailboxes are log-normal
    /// around it, as real users are.
    pub messages_per_user: u32,
    /// Median size of a text body; sizes are log-normal (sigma 0.8) around it.
    pub median_body_size: u32,
    /// Fraction of messages carrying a base64 attachment: 90% of them log-normal around 64 KiB,
    /// 10% spread up to `max_attachment_size`.
    pub attachment_ratio: f64,
    /// Largest raw attachment (before base64, which adds a third).
    pub max_attachment_size: u64,
    /// Fraction of messages delivered to several users (identical bytes: what dedup catches).
    pub shared_ratio: f64,
    /// The messages' dates spread over this many days before [`BASE_EPOCH`].
    pub days: u32,
}

impl SpoolSpec {
    /// Tiny: ~10 users, ~500 files, a few MiB; generates well under a second.
    pub fn demo() -> Self {
        SpoolSpec {
            seed: 1,
            users: 10,
            domains: 2,
            messages_per_user: 45,
            median_body_size: 4096,
            attachment_ratio: 0.03,
            max_attachment_size: 512 << 10,
            shared_ratio: 0.2,
            days: 60,
        }
    }

    /// CI scale: ~5k files, ~80 MiB.
    pub fn quick() -> Self {
        SpoolSpec {
            seed: 2,
            users: 60,
            domains: 3,
            messages_per_user: 75,
            median_body_size: 8192,
            attachment_ratio: 0.03,
            max_attachment_size: 3 << 20,
            shared_ratio: 0.2,
            days: 365,
        }
    }

    /// Benchmark scale: ~100k files, ~1.5 GiB, a few hundred users.
    pub fn full() -> Self {
        SpoolSpec {
            seed: 3,
            users: 300,
            domains: 5,
            messages_per_user: 320,
            median_body_size: 6144,
            attachment_ratio: 0.03,
            max_attachment_size: 3 << 20,
            shared_ratio: 0.2,
            days: 730,
        }
    }

    pub(crate) fn shape(&self) -> Shape {
        Shape {
            median_body_size: self.median_body_size,
            attachment_ratio: self.attachment_ratio,
            max_attachment_size: self.max_attachment_size,
            shared_ratio: self.shared_ratio,
        }
    }

    fn validate(&self) -> Result<(), GenError> {
        let bad = |what: &str| Err(GenError::InvalidSpec(what.to_string()));
        if self.users == 0 || self.domains == 0 || self.domains > self.users {
            return bad("need 1 <= domains <= users");
        }
        if !(0.0..=1.0).contains(&self.attachment_ratio)
            || !(0.0..=1.0).contains(&self.shared_ratio)
        {
            return bad("ratios must be within 0..=1");
        }
        if self.median_body_size < 64 || self.max_attachment_size < 16 << 10 {
            return bad("median_body_size >= 64 and max_attachment_size >= 16 KiB");
        }
        Ok(())
    }
}

/// What [`generate_spool`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub users: u64,
    pub folders: u64,
    /// Distinct messages composed.
    pub messages: u64,
    /// Message files written (a message delivered to three users counts three times).
    pub message_files: u64,
    /// Messages delivered to more than one mailbox.
    pub shared_messages: u64,
    /// All files, `cyrus.*` included.
    pub files: u64,
    /// Bytes of all files.
    pub bytes: u64,
    /// Bytes of distinct message contents (what a perfect dedup stores for messages).
    pub unique_message_bytes: u64,
}

/// How messages look; shared by the initial spool and the daily churn.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    pub median_body_size: u32,
    pub attachment_ratio: f64,
    pub max_attachment_size: u64,
    pub shared_ratio: f64,
}

/// A stable 64-bit label for a string, to derive per-name random streams.
pub(crate) fn label(s: &str) -> u64 {
    let h = blake3::hash(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

/// "alice.martin" -> "Alice Martin".
pub(crate) fn display_name(local: &str) -> String {
    local
        .split('.')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a new message comes from: the random stream, its shape, its own seed and its date.
pub(crate) struct Origin<'a> {
    pub rng: &'a mut Rng,
    pub shape: &'a Shape,
    pub msg_seed: u64,
    pub date: i64,
}

/// Files written for one message, and the size of one copy.
pub(crate) struct Delivered {
    pub files: u64,
    pub bytes: u64,
}

/// Draws one message, composes it and delivers it: to `primary` in folder `primary_folder`, and
/// for a shared message also to the INBOX of 1–3 other mailboxes (identical bytes).
pub(crate) fn originate(
    o: Origin,
    mailboxes: &mut [Mailbox],
    primary: usize,
    primary_folder: usize,
    mut pick_other: impl FnMut(&mut Rng) -> usize,
) -> Result<Delivered, GenError> {
    let rng = o.rng;
    let mut targets = vec![(primary, primary_folder)];
    if mailboxes.len() > 1 && rng.chance(o.shape.shared_ratio) {
        let extra = rng.range(1, 3).min(mailboxes.len() as u64 - 1);
        let mut tries = 0;
        while (targets.len() as u64) < 1 + extra && tries < 20 {
            tries += 1;
            let u = pick_other(rng);
            if !targets.iter().any(|&(t, _)| t == u) {
                targets.push((u, INBOX));
            }
        }
    }
    let is_sent = mailboxes[primary].folders[primary_folder].name == "Sent";
    let external;
    let from: (&str, &str) = if is_sent {
        (&mailboxes[primary].display, &mailboxes[primary].address)
    } else if rng.chance(0.35) {
        let u = pick_other(rng);
        (&mailboxes[u].display, &mailboxes[u].address)
    } else {
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        external = (
            display_name(&format!("{first}.{last}")),
            format!("{first}.{last}@{}", rng.pick(EXTERNAL_DOMAINS)),
        );
        (&external.0, &external.1)
    };
    let mut to: Vec<String> = targets
        .iter()
        .filter(|&&(t, _)| !(is_sent && t == primary))
        .map(|&(t, _)| mailboxes[t].address.clone())
        .collect();
    if to.is_empty() {
        let first = rng.pick(FIRST_NAMES);
        to.push(format!("{first}@{}", rng.pick(EXTERNAL_DOMAINS)));
    }
    let body_size = (f64::from(o.shape.median_body_size) * rng.lognormal()) as usize;
    let attachment = if rng.chance(o.shape.attachment_ratio) {
        let max = o.shape.max_attachment_size;
        let raw = if rng.chance(0.1) {
            // The big ones: piecewise-uniform within a power of two, roughly log-uniform from
            // 16 KiB up to the maximum (a few MiB).
            let top = 63 - max.leading_zeros() as u64;
            let e = rng.range(14, top.max(14));
            (1u64 << e) + rng.below(1u64 << e)
        } else {
            // Most attachments: log-normal around 64 KiB (documents, photos).
            ((64 << 10) as f64 * rng.lognormal()) as u64
        };
        Some(raw.clamp(4 << 10, max) as usize)
    } else {
        None
    };
    let msg = compose(&MailSpec {
        seed: o.msg_seed,
        from,
        to: &to,
        date: o.date,
        body_size,
        attachment,
    });
    let guid = cyrus::guid_of(&msg.bytes);
    for &(t, f) in &targets {
        let mut flags = 0;
        if rng.chance(0.85) {
            flags |= cyrus::FLAG_SEEN;
        }
        if rng.chance(0.1) {
            flags |= cyrus::FLAG_ANSWERED;
        }
        if rng.chance(0.05) {
            flags |= cyrus::FLAG_FLAGGED;
        }
        mailboxes[t].folders[f].deliver(&msg, guid, o.date, flags)?;
    }
    Ok(Delivered {
        files: targets.len() as u64,
        bytes: msg.bytes.len() as u64,
    })
}

/// The folders of a new mailbox, in this order (INBOX first, as `folder.rs` expects).
const FOLDERS: [&str; 3] = ["INBOX", "Sent", "Archive"];
const SENT: usize = 1;
const ARCHIVE: usize = 2;

/// Generates a spool under `root` (created if missing; must be empty). See the module doc of
/// `gen` for the layout. Same spec, same bytes and metadata.
pub fn generate_spool(root: &Path, spec: &SpoolSpec) -> Result<SpoolStats, GenError> {
    spec.validate()?;
    prepare_empty_root(root)?;
    let mut rng = Rng::derive(spec.seed, 0x5e_ed);
    let start = BASE_EPOCH - i64::from(spec.days) * DAY_SECS;

    // Users: distinct first.last names, round-robin over domains, log-normal mailbox weights.
    let mut combos: Vec<usize> = (0..FIRST_NAMES.len() * LAST_NAMES.len()).collect();
    for i in (1..combos.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        combos.swap(i, j);
    }
    let mut mailboxes = Vec::with_capacity(spec.users as usize);
    let mut weights = Vec::with_capacity(spec.users as usize);
    let mut domain_dirs = Vec::new();
    for u in 0..spec.users as usize {
        let d = u % spec.domains as usize;
        let domain = DOMAINS
            .get(d)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("domain{d}.test"));
        let combo = combos[u % combos.len()];
        let mut local = format!(
            "{}.{}",
            FIRST_NAMES[combo / LAST_NAMES.len()],
            LAST_NAMES[combo % LAST_NAMES.len()]
        );
        if u >= combos.len() {
            local.push_str(&(u / combos.len()).to_string());
        }
        let user_root = root.join(&domain).join("user");
        if u < spec.domains as usize {
            domain_dirs.push(user_root.clone());
        }
        let dir = user_root.join(&local);
        let address = format!("{local}@{domain}");
        let cyrus_name = format!("{domain}!user.{}", local.replace('.', "^"));
        let mut folders = Vec::with_capacity(3);
        for name in FOLDERS {
            let (fdir, mailbox) = if name == "INBOX" {
                (dir.clone(), cyrus_name.clone())
            } else {
                (dir.join(name), format!("{cyrus_name}.{name}"))
            };
            folders.push(Folder::create(
                fdir,
                name.to_string(),
                &mailbox,
                &address,
                spec.seed,
            )?);
        }
        mailboxes.push(Mailbox {
            display: display_name(&local),
            address,
            folders,
        });
        weights.push(rng.lognormal());
    }
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut total = 0.0;
    for w in &weights {
        total += w;
        cumulative.push(total);
    }
    let pick = |rng: &mut Rng| {
        let x = rng.unit() * total;
        cumulative
            .partition_point(|&c| c <= x)
            .min(cumulative.len() - 1)
    };

    let shape = spec.shape();
    let target = u64::from(spec.users) * u64::from(spec.messages_per_user);
    let span = i64::from(spec.days) * DAY_SECS;
    let mut stats = SpoolStats {
        users: u64::from(spec.users),
        ..SpoolStats::default()
    };
    let mut delivered = 0u64;
    while delivered < target {
        let primary = pick(&mut rng);
        let r = rng.unit();
        // Where a mailbox's mail sits: mostly INBOX, some archived, some sent by the user.
        let folder = if r < 0.65 {
            INBOX
        } else if r < 0.9 {
            ARCHIVE
        } else {
            SENT
        };
        let slot = span / target.max(1) as i64;
        let date =
            start + delivered as i64 * span / target as i64 + rng.below(slot.max(1) as u64) as i64;
        let d = originate(
            Origin {
                rng: &mut rng,
                shape: &shape,
                msg_seed: Rng::derive(spec.seed, stats.messages).next_u64(),
                date,
            },
            &mut mailboxes,
            primary,
            folder,
            pick,
        )?;
        delivered += d.files;
        stats.messages += 1;
        stats.message_files += d.files;
        stats.unique_message_bytes += d.bytes;
        stats.bytes += d.bytes * d.files;
        if d.files > 1 {
            stats.shared_messages += 1;
        }
    }

    // Folder files and directory times last, innermost first, so nothing disturbs them after.
    for mb in &mut mailboxes {
        for f in mb.folders.iter_mut().rev() {
            let mtime = if f.index.records.is_empty() {
                start
            } else {
                f.index.last_updated
            };
            f.flush(mtime)?;
            set_times(&f.dir.join(cyrus::HEADER_FILE), start, 0)?;
            stats.folders += 1;
            stats.files += 3 + f.index.records.len() as u64;
            for name in [cyrus::HEADER_FILE, cyrus::INDEX_FILE, cyrus::CACHE_FILE] {
                let p = f.dir.join(name);
                stats.bytes += std::fs::metadata(&p).ctx("stat", &p)?.len();
            }
        }
    }
    for user_root in &domain_dirs {
        set_mode(user_root, 0o700)?;
        set_times(user_root, start, 0)?;
        if let Some(domain_dir) = user_root.parent() {
            set_mode(domain_dir, 0o700)?;
            set_times(domain_dir, start, 0)?;
        }
    }
    set_mode(root, 0o700)?;
    set_times(root, start, 0)?;
    Ok(stats)
}
