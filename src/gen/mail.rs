//! Composition of one RFC 822 message (headers, text body, optional base64 attachment) from a seed,
//! and the small text formats it needs (RFC 2822 dates, base64).

use super::rng::Rng;
use super::words::{ATTACHMENT_KINDS, WORDS};

/// What a message is about; the generator fills the rest (subject, body, ids) from `seed`.
pub(crate) struct MailSpec<'a> {
    pub seed: u64,
    /// `"Display Name" <local@domain>`-ready parts: (display, address).
    pub from: (&'a str, &'a str),
    pub to: &'a [String],
    pub date: i64,
    /// Target size of the text body in bytes.
    pub body_size: usize,
    /// Raw (pre-base64) size of the attachment, if any.
    pub attachment: Option<usize>,
}

/// A composed message plus what Cyrus would cache about it.
pub(crate) struct Composed {
    pub bytes: Vec<u8>,
    pub header_size: u32,
    /// The `cyrus.cache` payload: the envelope headers and a body-structure summary.
    pub cache: Vec<u8>,
}

const TIMEZONES: &[i32] = &[60, 60, 60, 120, 0, -300, 330];

pub(crate) fn compose(spec: &MailSpec) -> Composed {
    let mut rng = Rng::new(spec.seed);
    let tz = *rng.pick(TIMEZONES);
    let mut subject = String::new();
    if rng.chance(0.3) {
        subject.push_str("Re: ");
    }
    let subject_words = rng.range(2, 7);
    push_words(&mut rng, &mut subject, subject_words as usize, true);
    let from_domain = spec.from.1.rsplit('@').next().unwrap_or("localhost");
    let message_id = format!(
        "<{:016x}.{:08x}@{}>",
        rng.next_u64(),
        spec.date as u32,
        from_domain
    );
    let date = rfc2822(spec.date, tz);
    let to_addr = spec
        .to
        .first()
        .map(String::as_str)
        .unwrap_or("undisclosed-recipients:;");
    let to_domain = to_addr.rsplit('@').next().unwrap_or("localhost");

    let mut envelope = String::new();
    envelope.push_str(&format!("From: \"{}\" <{}>\r\n", spec.from.0, spec.from.1));
    envelope.push_str(&format!("To: {}\r\n", spec.to.join(",\r\n\t")));
    envelope.push_str(&format!("Subject: {subject}\r\n"));
    envelope.push_str(&format!("Date: {date}\r\n"));
    envelope.push_str(&format!("Message-ID: {message_id}\r\n"));

    let mut head = String::new();
    head.push_str(&format!("Return-Path: <{}>\r\n", spec.from.1));
    head.push_str(&format!(
        "Received: from mx{n}.{fd} (mx{n}.{fd} [192.0.2.{ip}])\r\n\tby mail.{td} (Cyrus) with LMTPA;\r\n\t{date}\r\n",
        n = rng.range(1, 3),
        fd = from_domain,
        td = to_domain,
        ip = rng.range(1, 254),
    ));
    head.push_str(&envelope);
    head.push_str("MIME-Version: 1.0\r\n");
    if rng.chance(0.5) {
        head.push_str("X-Mailer: BlueMind Webmail 5\r\n");
    }

    let mut body = String::with_capacity(spec.body_size + 256);
    write_text(&mut rng, &mut body, spec.body_size, spec.from.0);
    let mut bytes;
    let structure;
    match spec.attachment {
        None => {
            head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
            head.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
            structure = format!(
                "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"8BIT\" {})",
                body.len()
            );
            bytes = Vec::with_capacity(head.len() + body.len());
            bytes.extend_from_slice(head.as_bytes());
        }
        Some(raw_len) => {
            let boundary = format!("=_{:016x}", rng.next_u64());
            let (mime, ext) = *rng.pick(ATTACHMENT_KINDS);
            let name = format!("{}-{}.{ext}", rng.pick(WORDS), rng.range(1, 999));
            head.push_str(&format!(
                "Content-Type: multipart/mixed;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
            ));
            let mut raw = vec![0u8; raw_len];
            rng.fill(&mut raw);
            structure = format!(
                "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"8BIT\" {}) (\"{mime}\" (\"NAME\" \"{name}\") NIL NIL \"BASE64\" {raw_len}) \"MIXED\")",
                body.len()
            );
            let mut text = String::new();
            text.push_str("This is a multi-part message in MIME format.\r\n\r\n");
            text.push_str(&format!("--{boundary}\r\n"));
            text.push_str("Content-Type: text/plain; charset=utf-8\r\n");
            text.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
            text.push_str(&body);
            text.push_str(&format!("\r\n--{boundary}\r\n"));
            text.push_str(&format!("Content-Type: {mime};\r\n\tname=\"{name}\"\r\n"));
            text.push_str(&format!(
                "Content-Disposition: attachment;\r\n\tfilename=\"{name}\"\r\n"
            ));
            text.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
            bytes =
                Vec::with_capacity(head.len() + text.len() + raw_len * 4 / 3 + raw_len / 38 + 64);
            bytes.extend_from_slice(head.as_bytes());
            bytes.extend_from_slice(text.as_bytes());
            base64_lines(&raw, &mut bytes);
            body = format!("\r\n--{boundary}--\r\n");
        }
    }
    bytes.extend_from_slice(body.as_bytes());
    let mut cache = envelope.into_bytes();
    cache.extend_from_slice(structure.as_bytes());
    cache.extend_from_slice(b"\r\n");
    Composed {
        bytes,
        header_size: head.len() as u32,
        cache,
    }
}

fn push_words(rng: &mut Rng, out: &mut String, n: usize, capitalize: bool) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        let w = rng.pick(WORDS);
        if i == 0 && capitalize {
            let mut chars = w.chars();
            if let Some(c) = chars.next() {
                out.extend(c.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push_str(w);
        }
    }
}

/// Paragraphs of sentences wrapped at 72 columns with CRLF, until about `target` bytes.
fn write_text(rng: &mut Rng, out: &mut String, target: usize, signature: &str) {
    out.push_str(if rng.chance(0.5) {
        "Bonjour,\r\n\r\n"
    } else {
        "Hello,\r\n\r\n"
    });
    let mut line_len = 0usize;
    while out.len() < target {
        let sentence_words = rng.range(4, 16) as usize;
        let mut sentence = String::new();
        push_words(rng, &mut sentence, sentence_words, true);
        sentence.push('.');
        for word in sentence.split(' ') {
            if line_len > 0 && line_len + 1 + word.len() > 72 {
                out.push_str("\r\n");
                line_len = 0;
            } else if line_len > 0 {
                out.push(' ');
                line_len += 1;
            }
            out.push_str(word);
            line_len += word.len();
        }
        if rng.chance(0.2) {
            out.push_str("\r\n\r\n");
            line_len = 0;
        }
    }
    out.push_str("\r\n\r\n-- \r\n");
    out.push_str(signature);
    out.push_str("\r\n");
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 in 76-character lines with CRLF, as MIME mandates.
pub(crate) fn base64_lines(raw: &[u8], out: &mut Vec<u8>) {
    // 57 raw bytes make exactly one 76-character line.
    for line in raw.chunks(57) {
        for group in line.chunks(3) {
            let b = [
                group[0],
                group.get(1).copied().unwrap_or(0),
                group.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            out.push(B64[(n >> 18) as usize & 63]);
            out.push(B64[(n >> 12) as usize & 63]);
            out.push(if group.len() > 1 {
                B64[(n >> 6) as usize & 63]
            } else {
                b'='
            });
            out.push(if group.len() > 2 {
                B64[n as usize & 63]
            } else {
                b'='
            });
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// `Thu, 01 Jan 2026 01:00:00 +0100` for a Unix time shown in a zone `tz_minutes` east of UTC.
pub(crate) fn rfc2822(unix: i64, tz_minutes: i32) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = unix + i64::from(tz_minutes) * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let sign = if tz_minutes < 0 { '-' } else { '+' };
    let tz = tz_minutes.abs();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {}{:02}{:02}",
        DAYS[weekday],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        sign,
        tz / 60,
        tz % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc2822() {
        assert_eq!(rfc2822(0, 0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc2822(1_767_225_600, 60),
            "Thu, 01 Jan 2026 01:00:00 +0100"
        );
        assert_eq!(
            rfc2822(951_782_400, -300),
            "Mon, 28 Feb 2000 19:00:00 -0500"
        );
    }

    #[test]
    fn base64_matches_reference() {
        let mut out = Vec::new();
        base64_lines(b"Man is distinguished", &mut out);
        assert_eq!(out, b"TWFuIGlzIGRpc3Rpbmd1aXNoZWQ=\r\n");
        out.clear();
        base64_lines(&[0u8; 58], &mut out);
        assert_eq!(out.len(), 76 + 2 + 4 + 2);
    }

    #[test]
    fn message_has_headers_and_size() {
        let to = vec!["bob@acme.test".to_string()];
        let spec = MailSpec {
            seed: 1,
            from: ("Alice Martin", "alice.martin@acme.test"),
            to: &to,
            date: 1_767_225_600,
            body_size: 5000,
            attachment: Some(10_000),
        };
        let m = compose(&spec);
        let text = String::from_utf8_lossy(&m.bytes);
        for h in [
            "From: ",
            "To: ",
            "Subject: ",
            "Date: ",
            "Message-ID: ",
            "MIME-Version: 1.0",
        ] {
            assert!(text.contains(h), "{h} missing");
        }
        assert!(text.contains("Content-Transfer-Encoding: base64"));
        assert!(m.bytes.len() > 5000 + 13_000 && m.bytes.len() < 5000 + 15_000);
        assert_eq!(
            &m.bytes[m.header_size as usize - 4..m.header_size as usize],
            b"\r\n\r\n"
        );
        assert_eq!(compose(&spec).bytes, m.bytes);
    }
}
