//! Cyrus' `dlist` text encoding, the values of `mailboxes.db` (3.0 and later) and the last line
//! of a `cyrus.header`: `%(K V K V …)` key-value lists, `(…)` lists, atoms, `"quoted"` strings
//! and `{N+}` literals. Parsed with a depth limit and bounds checks (the input comes out of a
//! backup), and written back for the headers and mailbox-list entries a restore creates.

/// Nesting deeper than this is refused: real values nest two levels.
const MAX_DEPTH: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dlist {
    Atom(Vec<u8>),
    List(Vec<Dlist>),
    Kv(Vec<(Vec<u8>, Dlist)>),
}

/// An ACL kept as a dlist of `identifier → rights` atoms (in mailboxes.db records and 3.x
/// cyrus.header files); anything else in it is skipped.
pub fn acl_pairs(d: Option<&Dlist>) -> Vec<(String, String)> {
    match d {
        Some(Dlist::Kv(kv)) => kv
            .iter()
            .filter_map(|(k, v)| match v {
                Dlist::Atom(a) => Some((
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(a).into_owned(),
                )),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl Dlist {
    /// Parses one value; trailing spaces or a newline may follow it.
    pub fn parse(input: &[u8]) -> Result<Dlist, String> {
        let mut p = Parser { s: input, at: 0 };
        let v = p.value(0)?;
        p.skip_space();
        if p.at != input.len() {
            return Err(format!("unexpected data at byte {} of a dlist", p.at));
        }
        Ok(v)
    }

    /// The value of `key` in a key-value list.
    pub fn get(&self, key: &str) -> Option<&Dlist> {
        match self {
            Dlist::Kv(kv) => kv.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value of `key` as text, when it is an atom.
    pub fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Dlist::Atom(a) => Some(String::from_utf8_lossy(a).into_owned()),
            _ => None,
        }
    }

    /// Sets `key` in a key-value list (replacing it, or appending it).
    pub fn set(&mut self, key: &str, value: Dlist) {
        if let Dlist::Kv(kv) = self {
            match kv.iter_mut().find(|(k, _)| k == key.as_bytes()) {
                Some((_, v)) => *v = value,
                None => kv.push((key.as_bytes().to_vec(), value)),
            }
        }
    }

    pub fn atom(s: &str) -> Dlist {
        Dlist::Atom(s.as_bytes().to_vec())
    }

    /// The text form Cyrus writes: atoms bare when they can be, else quoted, else literals.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Dlist::Atom(a) => encode_atom(a, out),
            Dlist::List(items) => {
                out.push(b'(');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    v.encode(out);
                }
                out.push(b')');
            }
            Dlist::Kv(kv) => {
                out.extend_from_slice(b"%(");
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    encode_atom(k, out);
                    out.push(b' ');
                    v.encode(out);
                }
                out.push(b')');
            }
        }
    }
}

fn encode_atom(a: &[u8], out: &mut Vec<u8>) {
    let bare = !a.is_empty()
        && a != b"NIL"
        && a.iter()
            .all(|&b| b > b' ' && b < 0x7f && !b"()%\"\\{}".contains(&b));
    if bare {
        out.extend_from_slice(a);
    } else if a.iter().all(|&b| b >= b' ' && b != 0x7f) {
        out.push(b'"');
        for &b in a {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}+}}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("dlist: {what} at byte {}", self.at)
    }

    fn value(&mut self, depth: usize) -> Result<Dlist, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        self.skip_space();
        match self.s.get(self.at) {
            None => Err(self.err("value missing")),
            Some(b'%') if self.s.get(self.at + 1) == Some(&b'(') => {
                self.at += 2;
                let mut kv = Vec::new();
                loop {
                    self.skip_space();
                    match self.s.get(self.at) {
                        Some(b')') => {
                            self.at += 1;
                            return Ok(Dlist::Kv(kv));
                        }
                        None => return Err(self.err("unclosed %(")),
                        _ => {}
                    }
                    let key = match self.value(depth + 1)? {
                        Dlist::Atom(a) => a,
                        _ => return Err(self.err("a key that is not an atom")),
                    };
                    let v = self.value(depth + 1)?;
                    kv.push((key, v));
                }
            }
            Some(b'(') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match self.s.get(self.at) {
                        Some(b')') => {
                            self.at += 1;
                            return Ok(Dlist::List(items));
                        }
                        None => return Err(self.err("unclosed (")),
                        _ => items.push(self.value(depth + 1)?),
                    }
                }
            }
            Some(b'"') => {
                self.at += 1;
                let mut a = Vec::new();
                loop {
                    match self.s.get(self.at) {
                        None => return Err(self.err("unclosed quote")),
                        Some(b'"') => {
                            self.at += 1;
                            return Ok(Dlist::Atom(a));
                        }
                        Some(b'\\') => {
                            let c = *self.s.get(self.at + 1).ok_or_else(|| self.err("lone \\"))?;
                            a.push(c);
                            self.at += 2;
                        }
                        Some(&c) => {
                            a.push(c);
                            self.at += 1;
                        }
                    }
                }
            }
            Some(b'{') => {
                let close = self.s[self.at..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or_else(|| self.err("unclosed literal length"))?;
                let spec = &self.s[self.at + 1..self.at + close];
                let digits = spec.strip_suffix(b"+").unwrap_or(spec);
                let n: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| self.err("bad literal length"))?;
                let mut p = self.at + close + 1;
                if self.s.get(p) == Some(&b'\r') {
                    p += 1;
                }
                if self.s.get(p) == Some(&b'\n') {
                    p += 1;
                }
                let end = p
                    .checked_add(n)
                    .filter(|&e| e <= self.s.len())
                    .ok_or_else(|| self.err("literal longer than the data"))?;
                self.at = end;
                Ok(Dlist::Atom(self.s[p..end].to_vec()))
            }
            Some(b')') => Err(self.err("unexpected )")),
            Some(_) => {
                let start = self.at;
                while let Some(&c) = self.s.get(self.at) {
                    if matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')') {
                        break;
                    }
                    self.at += 1;
                }
                let a = &self.s[start..self.at];
                Ok(Dlist::Atom(if a == b"NIL" {
                    Vec::new()
                } else {
                    a.to_vec()
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mailboxes_db_value() {
        let v = Dlist::parse(
            b"%(T e N \"other.test\x1duser\x1fcarol\" P default V 17 A %(carol@other.test lrs) H ())",
        )
        .unwrap();
        assert_eq!(v.text("T").unwrap(), "e");
        assert_eq!(v.text("N").unwrap(), "other.test\x1duser\x1fcarol");
        assert_eq!(v.text("P").unwrap(), "default");
        assert_eq!(v.get("A").unwrap().text("carol@other.test").unwrap(), "lrs");
        assert_eq!(v.get("H"), Some(&Dlist::List(vec![])));
        assert!(v.get("Z").is_none());
    }

    #[test]
    fn round_trips_and_rejects_junk() {
        let mut v = Dlist::parse(b"%(N user.a I x U ($Label \\Seen) Q {3+}\r\na b)").unwrap();
        assert_eq!(v.text("Q").unwrap(), "a b");
        v.set("I", Dlist::atom("new id"));
        v.set("Z", Dlist::atom(""));
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(Dlist::parse(&out).unwrap(), v);
        for bad in [
            &b"%(a"[..],
            b"(a",
            b"\"x",
            b"{9+}\r\nab",
            b")",
            b"%((x) y)",
            b"a b",
        ] {
            assert!(
                Dlist::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "(".repeat(100) + &")".repeat(100);
        assert!(Dlist::parse(deep.as_bytes()).is_err());
    }
}
