//! AWS Signature Version 4 for S3, in the `Authorization` header with a signed payload hash:
//! the canonical request, the string to sign, the derived key and the header values (see
//! "Authenticating Requests: Using the Authorization Header" in the S3 API reference).
//!
//! Why not presigned URLs: servers and proxies log request lines, and a logged presigned URL
//! can be replayed by anyone until it expires, with any body on a PUT. Here nothing secret or
//! replayable is in the URL; the signature covers the method, path, query, `host`, `range`,
//! the time and the SHA-256 of the body, so a captured request can neither be sent without its
//! headers nor with another body. The secret key is only ever an HMAC key: it is never
//! formatted (the [`Signer`]'s `Debug` hides it).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of nothing: the payload hash of GET, HEAD and DELETE.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Who signs, for which region and service.
#[derive(Clone)]
pub struct Signer {
    pub access_key: String,
    secret_key: String,
    /// Temporary credentials' token, sent (and signed) as `x-amz-security-token`.
    pub session_token: Option<String>,
    pub region: String,
    pub service: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .field("region", &self.region)
            .finish()
    }
}

/// What is signed of a request. `path` and `query` are as sent on the wire, already encoded
/// with [`uri_encode`] (S3 signs the path as sent, not encoded twice).
pub struct Canonical<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Encoded `(name, value)` pairs, in any order.
    pub query: &'a [(String, String)],
    /// Headers to sign (any case; `host` must be among them).
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body.
    pub payload_sha256: &'a str,
}

impl Signer {
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Signer {
        Signer {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            session_token: None,
            region: region.to_string(),
            service: "s3".to_string(),
        }
    }

    /// The `Authorization` header value for `req` at `amz_date` (`YYYYMMDDTHHMMSSZ`, which
    /// must also be the signed `x-amz-date` header).
    pub fn authorization(&self, amz_date: &str, req: &Canonical<'_>) -> String {
        let (signed, canonical) = canonical_request(req);
        let day = amz_date.get(..8).unwrap_or(amz_date);
        let scope = format!("{day}/{}/{}/aws4_request", self.region, self.service);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            day.as_bytes(),
        );
        for part in [self.region.as_str(), self.service.as_str(), "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            self.access_key
        )
    }
}

/// The signed header names (`;`-joined) and the canonical request.
fn canonical_request(req: &Canonical<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            // Values are trimmed and inner runs of spaces squeezed, as the spec says.
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (k.to_ascii_lowercase(), v)
        })
        .collect();
    headers.sort();
    let signed = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut query: Vec<&(String, String)> = req.query.iter().collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut text = format!("{}\n{}\n{query}\n", req.method, req.path);
    for (k, v) in &headers {
        text.push_str(&format!("{k}:{v}\n"));
    }
    text.push_str(&format!("\n{signed}\n{}", req.payload_sha256));
    (signed, text)
}

/// HMAC-SHA-256 of `data` under `key` (also SCRAM's, in restore::dav_http).
pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Hex SHA-256 of a body.
pub fn payload_hash(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// `s` percent-encoded as SigV4 wants: everything but `A-Za-z0-9-._~` (and `/` when
/// `keep_slash`, for paths) as `%XX` of its UTF-8 bytes.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` of `t` (UTC).
pub fn amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::timefmt::civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The credentials of the examples in AWS's S3 SigV4 documentation.
    fn doc_signer() -> Signer {
        Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        )
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn signature(auth: &str) -> &str {
        auth.rsplit("Signature=").next().unwrap_or("")
    }

    const HOST: &str = "examplebucket.s3.amazonaws.com";
    const DATE: &str = "20130524T000000Z";

    /// "Example: GET Object" (a range read).
    #[test]
    fn aws_get_object_example() {
        let headers = h(&[
            ("Host", HOST),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", DATE),
        ]);
        let req = Canonical {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let auth = doc_signer().authorization(DATE, &req);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// "Example: PUT Object": a signed body, a key that needs encoding.
    #[test]
    fn aws_put_object_example() {
        let body = b"Welcome to Amazon S3.";
        let hash = payload_hash(body);
        assert_eq!(
            hash,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let headers = h(&[
            ("Host", HOST),
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-content-sha256", &hash),
            ("x-amz-date", DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ]);
        let path = uri_encode("/test$file.text", true);
        assert_eq!(path, "/test%24file.text");
        let req = Canonical {
            method: "PUT",
            path: &path,
            query: &[],
            headers: &headers,
            payload_sha256: &hash,
        };
        assert_eq!(
            signature(&doc_signer().authorization(DATE, &req)),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    /// "Example: GET Bucket Lifecycle" (a query name without value) and "Example: Get Bucket
    /// (List Objects)" (query parameters sorted).
    #[test]
    fn aws_bucket_examples() {
        let headers = h(&[
            ("Host", HOST),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", DATE),
        ]);
        let lifecycle = [("lifecycle".to_string(), String::new())];
        let req = Canonical {
            method: "GET",
            path: "/",
            query: &lifecycle,
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        assert_eq!(
            signature(&doc_signer().authorization(DATE, &req)),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
        let list = [
            ("prefix".to_string(), "J".to_string()),
            ("max-keys".to_string(), "2".to_string()),
        ];
        let req = Canonical {
            query: &list,
            ..req
        };
        assert_eq!(
            signature(&doc_signer().authorization(DATE, &req)),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    /// The generic SigV4 test suite's `get-vanilla` (service `service`, 2015 credentials).
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut s = Signer::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        );
        s.service = "service".into();
        let headers = h(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        let req = Canonical {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        assert_eq!(
            s.authorization("20150830T123600Z", &req),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn dates_and_encoding() {
        let at = |s: u64| amz_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(1_369_353_600), "20130524T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_440_938_160), "20150830T123600Z");
        assert_eq!(at(4_102_444_799), "20991231T235959Z");
        assert_eq!(uri_encode("a b/c~d+é", true), "a%20b/c~d%2B%C3%A9");
        assert_eq!(uri_encode("a/b=c", false), "a%2Fb%3Dc");
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = format!("{:?}", doc_signer());
        assert!(
            !s.contains("EXAMPLEKEY") && s.contains("AKIAIOSFODNN7EXAMPLE"),
            "{s}"
        );
    }
}
