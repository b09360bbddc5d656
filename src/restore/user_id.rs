//! Who and what a single-user restore names: a user (`local@domain`) or shared mailbox
//! ([`User`], with the path templates of the config's `[entities]`), and which of their data
//! ([`What`]: mail, archive, calendars, contacts).

use super::user::UserRestoreError;
use crate::config::{Entities, EntityConfig};
use crate::cyrus::layout::{self, Hashing};
use crate::cyrus::name::MboxName;

type Result<T> = std::result::Result<T, UserRestoreError>;

/// A user as `local@domain` (or `local` without virtual domains), or a shared mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub local: String,
    /// Empty on a server without virtual domains.
    pub domain: String,
    /// A shared mailbox (`--shared NAME@domain`): `local` is its name, `/`-separated.
    pub shared: bool,
}

impl User {
    pub fn parse(s: &str) -> Result<User> {
        let bad = || UserRestoreError::BadUser(s.to_string());
        let (local, domain) = s.split_once('@').unwrap_or((s, ""));
        let ok = |p: &str| {
            !p.is_empty() && p != "." && p != ".." && !p.contains(['/', '\0', '@', '{', '}'])
        };
        if !ok(local)
            || !(domain.is_empty() || ok(domain))
            || (s.contains('@') && domain.is_empty())
        {
            return Err(bad());
        }
        Ok(User {
            local: local.to_string(),
            domain: domain.to_string(),
            shared: false,
        })
    }

    /// A shared mailbox `NAME@domain` (`NAME` may have `/`-separated levels).
    pub fn parse_shared(s: &str) -> Result<User> {
        let bad = || UserRestoreError::BadUser(s.to_string());
        let (name, domain) = s.split_once('@').unwrap_or((s, ""));
        let levels_ok = name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains(['\0', '{', '}']));
        if !levels_ok || name == "user" || name.starts_with("user/") || domain.contains(['/', '@'])
        {
            return Err(bad());
        }
        Ok(User {
            local: name.to_string(),
            domain: domain.to_string(),
            shared: true,
        })
    }

    /// The Cyrus mailbox at the top of this entity's folders (`user.alice`, `shared`).
    pub fn root(&self) -> MboxName {
        let parts = if self.shared {
            self.local.split('/').map(str::to_string).collect()
        } else {
            vec!["user".to_string(), self.local.clone()]
        };
        MboxName {
            domain: (!self.domain.is_empty()).then(|| self.domain.clone()),
            parts,
        }
    }

    /// Fills a path template: `{domain}`, `{local}`, and Cyrus' hash letters `{d}` (of the
    /// domain) and `{l}` (of the user: first letter, lower-cased, `q` when not a-z), `{D}` and
    /// `{L}` (the same with `fulldirhash`).
    pub fn expand(&self, template: &str) -> String {
        let letter = |s: &str, h: Hashing| {
            layout::hash_letter(&s.replace('.', "^"), h)
                .map(String::from)
                .unwrap_or_default()
        };
        template
            .replace("{domain}", &self.domain)
            .replace("{local}", &self.local)
            .replace("{d}", &letter(&self.domain, Hashing::Letter))
            .replace("{l}", &letter(&self.local, Hashing::Letter))
            .replace("{D}", &letter(&self.domain, Hashing::Full))
            .replace("{L}", &letter(&self.local, Hashing::Full))
    }

    pub fn kind(&self) -> &'static str {
        if self.shared {
            "shared mailbox"
        } else {
            "user"
        }
    }
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.domain.is_empty() {
            write!(f, "{}", self.local)
        } else {
            write!(f, "{}@{}", self.local, self.domain)
        }
    }
}

/// Which of a user's data to restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Mail,
    Archive,
    Calendar,
    Contacts,
}

impl What {
    /// Parses `mail,archive,all`; `all` means both, with a part or user missing from the archive
    /// skipped (archives are off by default, and most users have none).
    pub fn parse_list(s: &str) -> Result<(Vec<What>, bool)> {
        let mut out = Vec::new();
        let mut all = false;
        for w in s.split(',').map(str::trim) {
            match w {
                "mail" | "mailbox" => out.push(What::Mail),
                "archive" => out.push(What::Archive),
                "calendar" | "calendars" => out.push(What::Calendar),
                "contacts" | "addressbook" | "addressbooks" => out.push(What::Contacts),
                "all" => {
                    all = true;
                    out.extend([What::Mail, What::Archive, What::Calendar, What::Contacts]);
                }
                _ => return Err(UserRestoreError::BadWhat { what: w.into() }),
            }
        }
        out.sort_by_key(|w| *w as u8);
        out.dedup();
        Ok((out, all))
    }

    pub fn entity(self, e: &Entities) -> &EntityConfig {
        match self {
            What::Mail | What::Calendar | What::Contacts => &e.mailbox,
            What::Archive => &e.archive,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            What::Mail => "mail",
            What::Archive => "archive",
            What::Calendar => "calendar",
            What::Contacts => "contacts",
        }
    }

    /// Calendars and address books, restored through the DAV server ([`super::dav`]), not as
    /// folders.
    pub fn is_dav(self) -> bool {
        matches!(self, What::Calendar | What::Contacts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse_and_expand() {
        let u = User::parse("jdoe@example.com").unwrap();
        assert_eq!(u.expand("{domain}/user/{local}"), "example.com/user/jdoe");
        assert_eq!(
            u.expand("domain/{d}/{domain}/{l}/user/{local}"),
            "domain/e/example.com/j/user/jdoe"
        );
        assert!(('A'..='W').any(|c| u.expand("{L}") == c.to_string()));
        assert_eq!(u.to_string(), "jdoe@example.com");
        assert_eq!(u.root().legacy(), "example.com!user.jdoe");
        let bare = User::parse("jdoe").unwrap();
        assert_eq!(
            (bare.to_string(), bare.root().legacy()),
            ("jdoe".into(), "user.jdoe".into())
        );
        for bad in ["@x", "a@", "../x@y", "a@b/c", "a@..", "a@b@c", ""] {
            assert!(User::parse(bad).is_err(), "{bad}");
        }
        let s = User::parse_shared("sales/2026@example.com").unwrap();
        assert_eq!(s.root().legacy(), "example.com!sales.2026");
        assert!(User::parse_shared("user/bob@x").is_err() && User::parse_shared("a//b").is_err());
    }

    #[test]
    fn what_lists() {
        assert_eq!(What::parse_list("mail").unwrap(), (vec![What::Mail], false));
        assert_eq!(
            What::parse_list("archive,mail").unwrap(),
            (vec![What::Mail, What::Archive], false)
        );
        assert_eq!(
            What::parse_list("all").unwrap(),
            (
                vec![What::Mail, What::Archive, What::Calendar, What::Contacts],
                true
            )
        );
        assert_eq!(
            What::parse_list("contacts,calendar").unwrap().0,
            [What::Calendar, What::Contacts]
        );
        assert!(What::parse_list("calendr").is_err());
    }
}
