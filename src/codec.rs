//! Little binary primitives shared by the tree and pack formats: LEB128 varints and a bounds-checked
//! reader that turns every malformed input into an error instead of a panic or a huge allocation.

/// A malformed encoding: what was being read and where.
#[derive(Debug, thiserror::Error)]
#[error("malformed {what} at byte {offset}")]
pub struct DecodeError {
    pub what: &'static str,
    pub offset: usize,
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads primitives from a byte slice, checking every length against what is left.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            what,
            offset: self.pos,
        }
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.err(what))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err(what))
    }

    pub fn varint_u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| self.err(what))
    }

    pub fn zigzag(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let v = self.varint(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count of items each at least `min_item_size` bytes: refuses counts the input cannot hold,
    /// so a corrupt count never causes a huge allocation.
    pub fn count(&mut self, what: &'static str, min_item_size: usize) -> Result<usize, DecodeError> {
        let n = self.varint(what)?;
        let max = self.remaining() / min_item_size.max(1);
        if n > max as u64 {
            return Err(self.err(what));
        }
        Ok(n as usize)
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(what));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.varint(what)?;
        let n = usize::try_from(n).map_err(|_| self.err(what))?;
        self.take(n, what)
    }

    pub fn array32(&mut self, what: &'static str) -> Result<[u8; 32], DecodeError> {
        let s = self.take(32, what)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(s);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let values = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let mut buf = Vec::new();
        for v in values {
            put_varint(&mut buf, v);
        }
        let signed = [0i64, -1, 1, i64::MIN, i64::MAX, -86400];
        for v in signed {
            put_zigzag(&mut buf, v);
        }
        let mut r = Reader::new(&buf);
        for v in values {
            assert_eq!(r.varint("v").unwrap(), v);
        }
        for v in signed {
            assert_eq!(r.zigzag("z").unwrap(), v);
        }
        assert!(r.is_empty());
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut r = Reader::new(&[0x80, 0x80]);
        assert!(r.varint("v").is_err());
        let mut r = Reader::new(&[0x05, 1, 2]);
        assert!(r.bytes("b").is_err());
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0x0f]);
        assert!(r.count("c", 1).is_err());
    }
}
