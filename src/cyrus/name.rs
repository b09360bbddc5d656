//! Mailbox names as Cyrus stores them. Two internal spellings exist: Cyrus 3.6 keys
//! `mailboxes.db` by `domain ␝ user ␟ alice ␟ Work` (control characters as separators, dots kept),
//! older versions and every `cyrus.header` use `domain!user.alice.Work` (a dot in a name part is
//! written `^`). [`MboxName`] holds the parts themselves, so both spellings, the on-disk folder
//! names and the IMAP names printed for the operator are derived from one value.

/// Separators of Cyrus 3.6 internal names. Format constants: do not change.
const DOMAIN_SEP: char = '\x1d';
const PART_SEP: char = '\x1f';

/// Prefix under which Cyrus keeps deleted mailboxes (its `deletedprefix` default).
pub const DELETED_PREFIX: &str = "DELETED";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MboxName {
    /// The virtual domain; `None` without virtdomains or in the default domain.
    pub domain: Option<String>,
    /// `["user", "alice", "Work"]`, `["shared", "sub"]`.
    pub parts: Vec<String>,
}

impl MboxName {
    /// Parses a Cyrus 3.6 internal name (`domain␝user␟alice`).
    pub fn from_internal(s: &str) -> Option<MboxName> {
        let (domain, rest) = match s.split_once(DOMAIN_SEP) {
            Some((d, r)) => (Some(d.to_string()), r),
            None => (None, s),
        };
        MboxName::checked(domain, rest.split(PART_SEP).map(str::to_string).collect())
    }

    /// Parses a legacy internal name (`domain!user.alice.Work`, `^` for a dot in a part).
    pub fn from_legacy(s: &str) -> Option<MboxName> {
        let (domain, rest) = match s.split_once('!') {
            Some((d, r)) => (Some(d.to_string()), r),
            None => (None, s),
        };
        MboxName::checked(
            domain,
            rest.split('.').map(|p| p.replace('^', ".")).collect(),
        )
    }

    fn checked(domain: Option<String>, parts: Vec<String>) -> Option<MboxName> {
        let ok = |p: &str| !p.is_empty() && p != "." && p != ".." && !p.contains(['/', '\0']);
        if parts.iter().all(|p| ok(p)) && domain.as_deref().is_none_or(ok) {
            Some(MboxName { domain, parts })
        } else {
            None
        }
    }

    /// `domain!user.alice.Work`: the spelling of `cyrus.header` and `ctl_mboxlist` dumps.
    pub fn legacy(&self) -> String {
        let body: Vec<String> = self.parts.iter().map(|p| p.replace('.', "^")).collect();
        match &self.domain {
            Some(d) => format!("{d}!{}", body.join(".")),
            None => body.join("."),
        }
    }

    /// The IMAP name an administrator types (`user/alice/Work@example.org`), with `sep` as the
    /// hierarchy separator (`/` with `unixhierarchysep: yes`, else `.`).
    pub fn external(&self, sep: char) -> String {
        let body = self.parts.join(&sep.to_string());
        match &self.domain {
            Some(d) => format!("{body}@{d}"),
            None => body,
        }
    }

    /// For `user.alice…`: `alice` (with `@domain`), the owner.
    pub fn user(&self) -> Option<String> {
        match self.parts.as_slice() {
            [u, name, ..] if u == "user" => Some(match &self.domain {
                Some(d) => format!("{name}@{d}"),
                None => name.clone(),
            }),
            _ => None,
        }
    }

    /// True for mailboxes in Cyrus' delayed-delete area.
    pub fn is_deleted(&self) -> bool {
        self.parts.first().is_some_and(|p| p == DELETED_PREFIX)
    }

    /// True when `self` is `root` or one of its subfolders.
    pub fn is_under(&self, root: &MboxName) -> bool {
        self.domain == root.domain && self.parts.starts_with(&root.parts)
    }

    /// `root`'s name with `self`'s parts below `from` appended: moves a folder of one tree into
    /// another (e.g. `user.alice.Work` from `user.alice` to `user.alice.Restored-…`).
    pub fn rebase(&self, from: &MboxName, to: &MboxName) -> MboxName {
        let mut parts = to.parts.clone();
        parts.extend(self.parts.iter().skip(from.parts.len()).cloned());
        MboxName {
            domain: to.domain.clone(),
            parts,
        }
    }

    /// A subfolder of this mailbox.
    pub fn child(&self, name: &str) -> MboxName {
        let mut parts = self.parts.clone();
        parts.push(name.to_string());
        MboxName {
            domain: self.domain.clone(),
            parts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings() {
        let n = MboxName::from_internal("example.org\x1duser\x1fjohn.doe\x1fWork").unwrap();
        assert_eq!(n.domain.as_deref(), Some("example.org"));
        assert_eq!(n.parts, ["user", "john.doe", "Work"]);
        assert_eq!(n.legacy(), "example.org!user.john^doe.Work");
        assert_eq!(MboxName::from_legacy(&n.legacy()), Some(n.clone()));
        assert_eq!(n.external('/'), "user/john.doe/Work@example.org");
        assert_eq!(n.user().as_deref(), Some("john.doe@example.org"));
        let s = MboxName::from_legacy("shared.sub").unwrap();
        assert_eq!(s.user(), None);
        assert_eq!(s.external('.'), "shared.sub");
        assert!(MboxName::from_legacy("DELETED.user.a.5F3")
            .unwrap()
            .is_deleted());
        for bad in ["user..a", "user./x", "a!", "user\x1f"] {
            assert!(
                MboxName::from_legacy(bad).is_none() || MboxName::from_internal(bad).is_none(),
                "{bad:?}"
            );
        }
        assert!(MboxName::from_internal("user\x1f..").is_none());
    }

    #[test]
    fn trees() {
        let inbox = MboxName::from_legacy("d!user.a").unwrap();
        let work = MboxName::from_legacy("d!user.a.Work").unwrap();
        let other = MboxName::from_legacy("d!user.ab").unwrap();
        assert!(work.is_under(&inbox) && inbox.is_under(&inbox) && !other.is_under(&inbox));
        let to = inbox.child("Restored-2026-11-30");
        assert_eq!(
            work.rebase(&inbox, &to).legacy(),
            "d!user.a.Restored-2026-11-30.Work"
        );
    }
}
