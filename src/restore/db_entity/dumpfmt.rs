//! What a `pg_dump` in the store is: its format (folder, custom, tar or plain) and the
//! PostgreSQL versions it names (the server it was dumped from, the pg_dump that wrote it),
//! read from its first bytes only: the custom format's header (`PGDMP`, as pg_dump's
//! `WriteHead` writes it), a folder's `toc.dat` (the same header), or a plain dump's
//! `-- Dumped from database version` comments. The bytes come from the store: every length is
//! checked, nothing is trusted.

use std::fmt;

/// How the dump is stored, which says how it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// `pg_dump -Fd`: a folder with `toc.dat` (pg_restore needs the files).
    Directory,
    /// `pg_dump -Fc`: one file, streamed to pg_restore's stdin.
    Custom,
    /// `pg_dump -Ft`: one tar file, streamed to pg_restore's stdin.
    Tar,
    /// `pg_dump -Fp`: SQL, streamed to psql's stdin.
    Plain,
}

impl fmt::Display for DumpFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DumpFormat::Directory => "directory (pg_dump -Fd)",
            DumpFormat::Custom => "custom (pg_dump -Fc)",
            DumpFormat::Tar => "tar (pg_dump -Ft)",
            DumpFormat::Plain => "plain SQL (pg_dump -Fp)",
        })
    }
}

/// A PostgreSQL major version as Debian names its folders: `15`, or `9.6` before 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Major(pub u32, pub u32);

impl Major {
    /// The major version of a version string such as `15.18 (Debian 15.18-0+deb12u1)`,
    /// `9.6.24` or `17beta1`.
    pub fn of(version: &str) -> Option<Major> {
        let digits = |s: &str| -> Option<u32> {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            s[..end].parse().ok()
        };
        let first = digits(version.trim())?;
        if first >= 10 {
            return Some(Major(first, 0));
        }
        let rest = version.trim().split_once('.')?.1;
        Some(Major(first, digits(rest)?))
    }
}

impl fmt::Display for Major {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 10 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{}.{}", self.0, self.1)
        }
    }
}

/// The versions a dump names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    /// The server the data were dumped from.
    pub from: Option<String>,
    /// The pg_dump that wrote it.
    pub by: Option<String>,
}

impl Versions {
    /// The PostgreSQL major version to load it with: the newer of the two (the server must be
    /// at least as new as the data's, and pg_dump writes SQL for its own version and newer).
    pub fn needed(&self) -> Option<Major> {
        let from = self.from.as_deref().and_then(Major::of);
        let by = self.by.as_deref().and_then(Major::of);
        from.max(by)
    }
}

/// What the first bytes of a dump file say: its format and versions; an error says why the
/// file is not a dump bmbackup can load.
pub fn sniff_file(head: &[u8]) -> Result<(DumpFormat, Versions), String> {
    if head.starts_with(b"PGDMP") {
        return Ok((DumpFormat::Custom, archive_header(head)?));
    }
    if head.len() >= 1024 && &head[257..262] == b"ustar" {
        // The first member of pg_dump's tar is toc.dat, whose data start at 512.
        let name_end = head[..100].iter().position(|&b| b == 0).unwrap_or(100);
        if &head[..name_end] == b"toc.dat" && head[512..].starts_with(b"PGDMP") {
            return Ok((DumpFormat::Tar, archive_header(&head[512..])?));
        }
        return Err("a tar file whose first member is not pg_dump's toc.dat".into());
    }
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err("a compressed file (gzip or zstd): bmbackup loads pg_dump's own formats; dump with -Fc (compressed inside) or -Fd".into());
    }
    let plain = plain_header(head);
    if plain.from.is_some() || plain.by.is_some() || looks_like_sql(head) {
        return Ok((DumpFormat::Plain, plain));
    }
    Err("not a pg_dump output (no PGDMP header, no \"-- PostgreSQL database dump\" comment)".into())
}

/// The versions in a folder dump's `toc.dat`.
pub fn sniff_toc(head: &[u8]) -> Result<Versions, String> {
    if !head.starts_with(b"PGDMP") {
        return Err("its toc.dat does not start with PGDMP".into());
    }
    archive_header(head)
}

fn looks_like_sql(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    text.contains("-- PostgreSQL database dump")
}

fn plain_header(head: &[u8]) -> Versions {
    let text = String::from_utf8_lossy(&head[..head.len().min(16 << 10)]);
    let find = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_string())
    };
    Versions {
        from: find("-- Dumped from database version "),
        by: find("-- Dumped by pg_dump version "),
    }
}

/// pg_dump's archive header (pg_backup_archiver.c, `ReadHead`): magic, version bytes, int and
/// offset sizes, format, compression, the creation time as 7 ints, the database name, then
/// (archive version 1.10 and later) the server's and pg_dump's version strings.
fn archive_header(head: &[u8]) -> Result<Versions, String> {
    let mut r = Reader {
        b: head,
        pos: 5,
        int_size: 4,
    };
    let bad = |what: &str| format!("its archive header is damaged or cut ({what})");
    let vmaj = r.byte().ok_or_else(|| bad("version"))?;
    let vmin = r.byte().ok_or_else(|| bad("version"))?;
    let vrev = if vmaj > 1 || (vmaj == 1 && vmin > 0) {
        r.byte().ok_or_else(|| bad("version"))?
    } else {
        0
    };
    let version = (u32::from(vmaj) << 16) | (u32::from(vmin) << 8) | u32::from(vrev);
    let v = |maj: u32, min: u32| (maj << 16) | (min << 8);
    let int_size = r.byte().ok_or_else(|| bad("int size"))?;
    if !(1..=8).contains(&int_size) {
        return Err(bad("int size"));
    }
    r.int_size = int_size;
    if version >= v(1, 7) {
        r.byte().ok_or_else(|| bad("offset size"))?;
    }
    r.byte().ok_or_else(|| bad("format"))?;
    if version >= v(1, 15) {
        r.byte().ok_or_else(|| bad("compression"))?;
    } else if version >= v(1, 4) {
        r.int().ok_or_else(|| bad("compression"))?;
    } else if version >= v(1, 2) {
        r.byte().ok_or_else(|| bad("compression"))?;
    }
    if version >= v(1, 4) {
        for _ in 0..7 {
            r.int().ok_or_else(|| bad("date"))?;
        }
        r.string().ok_or_else(|| bad("database name"))?;
    }
    if version < v(1, 10) {
        return Ok(Versions::default());
    }
    let from = r.string().ok_or_else(|| bad("server version"))?;
    let by = r.string().ok_or_else(|| bad("pg_dump version"))?;
    Ok(Versions { from, by })
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    int_size: u8,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// A sign byte, then `int_size` bytes little-endian.
    fn int(&mut self) -> Option<i64> {
        let negative = self.byte()? != 0;
        let mut value: u64 = 0;
        for i in 0..self.int_size {
            value |= u64::from(self.byte()?) << (8 * u32::from(i));
        }
        let value = i64::try_from(value).ok()?;
        Some(if negative { -value } else { value })
    }

    /// A length (-1: none), then that many bytes.
    fn string(&mut self) -> Option<Option<String>> {
        let len = self.int()?;
        if len < 0 {
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        let end = self.pos.checked_add(len)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(Some(String::from_utf8_lossy(s).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes of a real `pg_dump -Fc` of PostgreSQL 15.18 (archive version 1.14).
    fn custom_15() -> Vec<u8> {
        let mut h = b"PGDMP\x01\x0e\x00\x04\x08\x01".to_vec();
        h.extend([1, 1, 0, 0, 0]); // compression -1
        for n in [53u8, 2, 0, 8, 11, 126, 0] {
            h.extend([0, n, 0, 0, 0]);
        }
        for s in [
            "src",
            "15.18 (Debian 15.18-0+deb12u1)",
            "15.18 (Debian 15.18-0+deb12u1)",
        ] {
            h.extend([0, s.len() as u8, 0, 0, 0]);
            h.extend(s.as_bytes());
        }
        h
    }

    #[test]
    fn custom_header_gives_versions() {
        let (fmt, v) = sniff_file(&custom_15()).unwrap();
        assert_eq!(fmt, DumpFormat::Custom);
        assert_eq!(v.from.as_deref(), Some("15.18 (Debian 15.18-0+deb12u1)"));
        assert_eq!(v.needed(), Some(Major(15, 0)));
        assert_eq!(sniff_toc(&custom_15()).unwrap(), v);
    }

    #[test]
    fn cut_or_hostile_headers_are_errors() {
        let h = custom_15();
        for len in [6, 12, 30, 60, h.len() - 3] {
            assert!(sniff_file(&h[..len]).is_err(), "cut at {len}");
        }
        let mut huge = h.clone();
        huge[8] = 200; // int size
        assert!(sniff_file(&huge).is_err());
        assert!(sniff_file(b"hello").is_err());
        assert!(sniff_file(&[0x1f, 0x8b, 8, 0])
            .unwrap_err()
            .contains("compressed"));
    }

    #[test]
    fn plain_and_majors() {
        let text = b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 13.4\n-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)\n";
        let (fmt, v) = sniff_file(text).unwrap();
        assert_eq!(fmt, DumpFormat::Plain);
        assert_eq!(v.needed(), Some(Major(15, 0)));
        assert_eq!(Major::of("9.6.24").unwrap().to_string(), "9.6");
        assert_eq!(Major::of("17beta1"), Some(Major(17, 0)));
        assert!(Major(9, 6) < Major(10, 0));
    }
}
