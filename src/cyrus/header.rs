//! `cyrus.header`, the file that makes a folder a Cyrus mailbox: a magic line, a two-line quote,
//! then (Cyrus 3.x) a dlist with the mailbox's name `N`, unique id `I`, type `T`, ACL `A` and
//! user flag names `U` (the index's user-flag bits refer to them by position), or (2.x)
//! `quotaroot TAB uniqueid`, flag names and ACL lines. A restore copies a folder's
//! `cyrus.index` and writes a new header with the new name and a fresh unique id, so the copy
//! keeps its flags but is a new mailbox to Cyrus and to clients.

use super::dlist::Dlist;

/// The first line of every `cyrus.header`. Format constant: do not change.
pub const MAGIC: &[u8] = b"\xa1\x02\x8b\x0dCyrus mailbox header\n";
const QUOTE: &[u8] =
    b"\"The best thing about this system was that it had lots of goals.\"\n\t--Jim Morris on Andrew\n";

/// A parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Header {
    /// Cyrus 3.x: the dlist line.
    V3(Dlist),
    /// Cyrus 2.x: the lines after the quote.
    V2(Vec<Vec<u8>>),
}

impl Header {
    pub fn parse(data: &[u8]) -> Result<Header, String> {
        let rest = data
            .strip_prefix(MAGIC)
            .ok_or("not a cyrus.header (bad magic line)")?;
        let mut lines = rest.split(|&b| b == b'\n');
        // The two quote lines.
        lines.next();
        lines.next();
        let body: Vec<Vec<u8>> = lines.map(<[u8]>::to_vec).collect();
        match body.first() {
            Some(l) if l.starts_with(b"%(") => Ok(Header::V3(Dlist::parse(l)?)),
            Some(_) => Ok(Header::V2(body)),
            None => Err("cyrus.header ends after its magic line".into()),
        }
    }

    /// The same header for a mailbox called `legacy_name` with unique id `uniqueid`.
    pub fn renamed(&self, legacy_name: &str, uniqueid: &str) -> Header {
        match self {
            Header::V3(d) => {
                let mut d = d.clone();
                d.set("N", Dlist::atom(legacy_name));
                d.set("I", Dlist::atom(uniqueid));
                Header::V3(d)
            }
            Header::V2(lines) => {
                let mut lines = lines.clone();
                if let Some(first) = lines.first_mut() {
                    let quotaroot = first.split(|&b| b == b'\t').next().unwrap_or(b"").to_vec();
                    *first = [quotaroot, b"\t".to_vec(), uniqueid.as_bytes().to_vec()].concat();
                }
                Header::V2(lines)
            }
        }
    }

    /// A 3.x header for a mailbox the backup had no header for (its index is then not used).
    pub fn fresh(
        legacy_name: &str,
        uniqueid: &str,
        mbtype: &str,
        acl: &[(String, String)],
    ) -> Header {
        let acl = Dlist::Kv(
            acl.iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), Dlist::atom(v)))
                .collect(),
        );
        Header::V3(Dlist::Kv(vec![
            (
                b"T".to_vec(),
                Dlist::atom(if mbtype.is_empty() { "e" } else { mbtype }),
            ),
            (b"N".to_vec(), Dlist::atom(legacy_name)),
            (b"I".to_vec(), Dlist::atom(uniqueid)),
            (b"A".to_vec(), acl),
        ]))
    }

    /// The ACL of a 3.x header.
    pub fn acl(&self) -> Vec<(String, String)> {
        match self {
            Header::V3(d) => super::dlist::acl_pairs(d.get("A")),
            Header::V2(_) => Vec::new(),
        }
    }

    /// The mailbox's name (3.x headers name it; 2.x ones do not).
    pub fn name(&self) -> Option<super::name::MboxName> {
        match self {
            Header::V3(d) => d
                .text("N")
                .and_then(|n| super::name::MboxName::from_legacy(&n)),
            Header::V2(_) => None,
        }
    }

    /// The header's type letters (3.x).
    pub fn mbtype(&self) -> Option<String> {
        match self {
            Header::V3(d) => d.text("T"),
            Header::V2(_) => None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(QUOTE);
        match self {
            Header::V3(d) => {
                d.encode(&mut out);
                out.push(b'\n');
            }
            Header::V2(lines) => out.extend_from_slice(&lines.join(&b'\n')),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_a_real_header() {
        let real = b"\xa1\x02\x8b\x0dCyrus mailbox header\n\"The best thing about this system was that it had lots of goals.\"\n\t--Jim Morris on Andrew\n%(T el N example.org!user.dan I x2rrho0rd4cfjqaadoo78b97 A %(dan@example.org lrswipkxtecdan anyone p) U ($Label))\n";
        let h = Header::parse(real).unwrap();
        assert_eq!(h.encode(), real.to_vec());
        let r = h.renamed("example.org!user.dan.Restored-2026-11-30", "abc");
        let Header::V3(d) = &r else { panic!("not v3") };
        assert_eq!(
            d.text("N").unwrap(),
            "example.org!user.dan.Restored-2026-11-30"
        );
        assert_eq!(d.text("I").unwrap(), "abc");
        assert_eq!(
            r.name().unwrap().parts,
            ["user", "dan", "Restored-2026-11-30"]
        );
        assert_eq!(d.get("U"), Some(&Dlist::List(vec![Dlist::atom("$Label")])));
        assert_eq!(r.acl()[1], ("anyone".to_string(), "p".to_string()));
        assert_eq!(Header::parse(&r.encode()).unwrap(), r);
        assert!(Header::parse(b"junk").is_err());
        let v2 =
            Header::parse(b"\xa1\x02\x8b\x0dCyrus mailbox header\nq\nq\nroot\told\n\\Seen\nacl\n")
                .unwrap();
        assert!(String::from_utf8_lossy(&v2.renamed("x", "new").encode()).contains("root\tnew\n"));
    }
}
