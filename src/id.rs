//! Typed content ids: a BLAKE3 hash names every chunk, tree and snapshot manifest in the store.

use std::fmt;
use std::str::FromStr;

/// A 32-byte BLAKE3 digest. Wrapped by [`ChunkId`], [`TreeId`], [`SnapshotId`] so a chunk id
/// can never be passed where a tree id is expected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(data: &[u8]) -> Self {
        Digest(*blake3::hash(data).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[(b >> 4) as usize]));
            s.push(char::from(HEX[(b & 15) as usize]));
        }
        s
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Digest)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Error for a string that is not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("not a 64-digit hex hash: {0:?}")]
pub struct BadHex(pub String);

impl FromStr for Digest {
    type Err = BadHex;
    fn from_str(s: &str) -> Result<Self, BadHex> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(BadHex(s.to_string()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or_else(|| BadHex(s.to_string()))?;
            let lo = hex_val(pair[1]).ok_or_else(|| BadHex(s.to_string()))?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Digest(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

macro_rules! typed_id {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Digest);

        impl $name {
            pub fn of(data: &[u8]) -> Self {
                $name(Digest::of(data))
            }
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
            /// First 12 hex digits: what humans see and type.
            pub fn short(&self) -> String {
                self.0.to_hex()[..12].to_string()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = BadHex;
            fn from_str(s: &str) -> Result<Self, BadHex> {
                s.parse().map($name)
            }
        }
    };
}

typed_id!(ChunkId, "Names a chunk of file content by the BLAKE3 hash of its plain bytes.");
typed_id!(TreeId, "Names a directory's tree blob by the BLAKE3 hash of its encoding.");
typed_id!(SnapshotId, "Names a snapshot by the BLAKE3 hash of its manifest file.");
typed_id!(PackId, "Names a pack file by the BLAKE3 hash of its whole content.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d = Digest::of(b"hello");
        let parsed: Digest = d.to_hex().parse().unwrap();
        assert_eq!(d, parsed);
        assert!("xyz".parse::<Digest>().is_err());
        assert!("g".repeat(64).parse::<Digest>().is_err());
    }
}
