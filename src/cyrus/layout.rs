//! Where Cyrus keeps a mailbox's files inside its partition, as Cyrus computes it
//! (`mboxname_hash`, `dir_hash_c`): with `mailbox_legacy_dirs: no` (3.6) a mailbox lives in
//! `uuid/<1st char>/<2nd char>/<uniqueid>/`; otherwise in a folder named after it,
//! `[domain/<H>/<domain>/][<h>/]user/alice/Work` where the `domain/…` part appears with
//! virtdomains, and the hash letters `H` (of the domain) and `h` (of the user, or of the shared
//! folder's first level) with `hashimapspool`: the lower-cased first letter (`q` when it is not
//! a-z), or with `fulldirhash` a letter `A`…`W` hashed from the whole name.

use super::name::MboxName;

/// The spool hashing settings (`hashimapspool`, `fulldirhash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hashing {
    /// `hashimapspool: no`.
    None,
    /// `hashimapspool: yes`: first letter.
    Letter,
    /// `hashimapspool: yes` and `fulldirhash: yes`.
    Full,
}

impl Hashing {
    pub const ALL: [Hashing; 3] = [Hashing::Letter, Hashing::Full, Hashing::None];

    pub fn describe(self) -> &'static str {
        match self {
            Hashing::None => "hashimapspool: no",
            Hashing::Letter => "hashimapspool: yes",
            Hashing::Full => "hashimapspool: yes, fulldirhash: yes",
        }
    }
}

/// Cyrus' `dir_hash_c`: the hash letter of a name (up to its first `.` with `full`).
pub fn hash_letter(name: &str, hashing: Hashing) -> Option<char> {
    match hashing {
        Hashing::None => None,
        Hashing::Letter => {
            let c = name.chars().next()?.to_ascii_lowercase();
            Some(if c.is_ascii_lowercase() { c } else { 'q' })
        }
        Hashing::Full => {
            let mut n: u32 = 0;
            for &b in name.as_bytes().iter().take_while(|&&b| b != b'.') {
                n = ((n << 3) ^ (n >> 5)) ^ u32::from(b);
            }
            char::from_u32(u32::from(b'A') + n % 23)
        }
    }
}

/// The domain part of a legacy path: `domain/e/example.org` (or `domain/example.org`).
pub fn domain_dir(domain: &str, hashing: Hashing) -> String {
    match hash_letter(domain, hashing) {
        Some(c) => format!("domain/{c}/{domain}"),
        None => format!("domain/{domain}"),
    }
}

/// The hash letter of a mailbox below its domain: of the name after the first level
/// (`alice.Work` for `user.alice.Work`), or of the first level itself when there is no second.
pub fn name_letter(name: &MboxName, hashing: Hashing) -> Option<char> {
    let legacy: Vec<String> = name.parts.iter().map(|p| p.replace('.', "^")).collect();
    let idx = if legacy.len() > 1 {
        legacy[1..].join(".")
    } else {
        legacy.first()?.clone()
    };
    hash_letter(&idx, hashing)
}

/// A mailbox's folder, relative to its partition, with legacy directories.
pub fn legacy_path(name: &MboxName, hashing: Hashing) -> String {
    let mut p = Vec::new();
    if let Some(d) = &name.domain {
        p.push(domain_dir(d, hashing));
    }
    if let Some(c) = name_letter(name, hashing) {
        p.push(c.to_string());
    }
    p.extend(name.parts.iter().map(|x| x.replace('.', "^")));
    p.join("/")
}

/// A mailbox's folder, relative to its partition, with uuid directories.
pub fn uuid_path(uniqueid: &str) -> String {
    let mut c = uniqueid.chars();
    let a = c.next().unwrap_or('_');
    let b = c.next().unwrap_or('_');
    format!("uuid/{a}/{b}/{uniqueid}")
}

/// A fresh Cyrus-style unique id: 24 characters of `[0-9a-z]`.
pub fn new_uniqueid(seed: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(seed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    let mut rnd = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut rnd);
    }
    h.update(&rnd);
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    h.finalize().as_bytes()[..24]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> MboxName {
        MboxName::from_legacy(s).unwrap()
    }

    #[test]
    fn paths_seen_on_cyrus_3_6() {
        // Folders a real Cyrus 3.6 made (tests/cyrus_restore_user.rs checks more).
        assert_eq!(
            legacy_path(&n("example.org!user.alice.Work"), Hashing::Letter),
            "domain/e/example.org/a/user/alice/Work"
        );
        assert_eq!(
            legacy_path(&n("example.org!user.john^doe"), Hashing::Letter),
            "domain/e/example.org/j/user/john^doe"
        );
        assert_eq!(
            legacy_path(&n("example.org!shared.sub"), Hashing::Letter),
            "domain/e/example.org/s/shared/sub"
        );
        assert_eq!(legacy_path(&n("user.bob"), Hashing::None), "user/bob");
        assert_eq!(legacy_path(&n("user.9x"), Hashing::Letter), "q/user/9x");
        assert_eq!(
            uuid_path("qpbg04lsloiiih2ooiwxw4yn"),
            "uuid/q/p/qpbg04lsloiiih2ooiwxw4yn"
        );
    }

    #[test]
    fn full_hash_is_cyrus_dir_hash() {
        // dir_hash_c("alice", 1) computed by hand: n = ((n<<3)^(n>>5))^c over the bytes.
        let mut n: u32 = 0;
        for b in b"alice" {
            n = ((n << 3) ^ (n >> 5)) ^ u32::from(*b);
        }
        let want = char::from(b'A' + (n % 23) as u8);
        assert_eq!(hash_letter("alice.Work", Hashing::Full), Some(want));
        assert!(('A'..='W').contains(&want));
        let a = new_uniqueid(b"x");
        assert_eq!(a.len(), 24);
        assert_ne!(a, new_uniqueid(b"x"));
    }
}
