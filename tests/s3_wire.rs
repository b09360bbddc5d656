//! The store on S3 as seen on the wire, against a real Garage server (see `common/garage.rs`):
//! requests are signed in headers with the body's hash, so a request line from the server's
//! log cannot be replayed and a captured request cannot carry another body; failures that
//! cannot heal (untrusted certificate, https:// to a plain port, unknown host, missing bucket,
//! wrong region) fail at once and say why; a private CA (`ca_file`, `SSL_CERT_FILE`) and an
//! HTTPS proxy (`HTTPS_PROXY`, `NO_PROXY`) work; the run's traffic is counted in `-v` and the
//! metrics file. A TLS front, a CONNECT proxy and a recording forwarder are small threads here.

mod common;

use common::{bytes, show, Env, Garage};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Copies `from` to `to` until `from` ends, keeping a copy in `record`.
fn pipe(mut from: TcpStream, mut to: TcpStream, record: Option<Arc<Mutex<Vec<u8>>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Some(r) = &record {
                r.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A forwarder from a local port to `to` that keeps what clients sent and counts connections.
fn tap(to: u16) -> (u16, Arc<Mutex<Vec<u8>>>, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&sent);
    let connections = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&connections);
    std::thread::spawn(move || {
        for c in l.incoming().map_while(Result::ok) {
            count.fetch_add(1, Ordering::SeqCst);
            let up = TcpStream::connect(("127.0.0.1", to)).unwrap();
            pipe(
                c.try_clone().unwrap(),
                up.try_clone().unwrap(),
                Some(record.clone()),
            );
            pipe(up, c, None);
        }
    });
    (port, sent, connections)
}

/// Tests that configure the library's S3 settings (process-wide) take turns.
static CONFIGURED: Mutex<()> = Mutex::new(());

/// A backend on a fresh location of `g`, through a tap.
fn tapped_backend(
    g: &Garage,
) -> (
    bmbackup::store::s3::S3Backend,
    Arc<Mutex<Vec<u8>>>,
    Arc<AtomicUsize>,
) {
    use bmbackup::store::s3::{configure, S3Backend, S3Config};
    let (port, sent, connections) = tap(g.s3_port);
    configure(Some(S3Config {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("garage".into()),
        path_style: Some(true),
        access_key_id: Some(g.access_key.clone()),
        secret_access_key: Some(g.secret_key.clone()),
        ..S3Config::default()
    }));
    let b = S3Backend::open(Path::new(&g.new_location())).unwrap();
    (b, sent, connections)
}

/// An HTTP proxy that only tunnels (`CONNECT`), as HTTPS goes through one; counts tunnels.
fn connect_proxy() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for mut c in l.incoming().map_while(Result::ok) {
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            let target = first.split(' ').nth(1).unwrap_or("").to_string();
            assert!(first.starts_with("CONNECT "), "{first}");
            seen.fetch_add(1, Ordering::SeqCst);
            let up = TcpStream::connect(target).unwrap();
            c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .unwrap();
            pipe(c.try_clone().unwrap(), up.try_clone().unwrap(), None);
            pipe(up, c, None);
        }
    });
    (port, count)
}

/// A private CA and a certificate for 127.0.0.1 it signed (made with openssl).
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian package openssl) is needed to make a test CA");
        assert!(out.status.success(), "openssl {args:?}: {}", show(&out));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=bmbackup test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&ca);
    let mut req = vec!["req", "-nodes", "-subj", "/CN=127.0.0.1"];
    req.extend(ec);
    req.extend(["-keyout", "srv.key", "-out", "srv.csr"]);
    openssl(&req);
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "srv.pem",
    ]);
    Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("srv.pem"),
        key: dir.join("srv.key"),
    }
}

/// A TLS front for the plain HTTP server on `to`: each request read from the TLS side is sent
/// to `to` on a connection of its own and the reply is relayed back (HTTP/1.1, bodies with a
/// Content-Length, as bmbackup sends them).
fn tls_front(pki: &Pki, to: u16) -> u16 {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().map_while(Result::ok) {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, c);
                // Ends when the client goes away or rejects the certificate.
                let _ = (|| -> std::io::Result<()> {
                    loop {
                        let mut head = Vec::new();
                        let mut b = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            if tls.read(&mut b)? == 0 {
                                return Ok(());
                            }
                            head.push(b[0]);
                        }
                        let text = String::from_utf8_lossy(&head).into_owned();
                        let len: usize = text
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        let mut body = vec![0u8; len];
                        tls.read_exact(&mut body)?;
                        let mut up = TcpStream::connect(("127.0.0.1", to))?;
                        up.write_all(&head[..head.len() - 2])?;
                        up.write_all(b"Connection: close\r\n\r\n")?;
                        up.write_all(&body)?;
                        let mut reply = Vec::new();
                        up.read_to_end(&mut reply)?;
                        tls.write_all(&reply)?;
                        tls.flush()?;
                    }
                })();
            });
        }
    });
    port
}

/// Sends `head` (without its final blank line) and `body` on a new connection to `port`;
/// the reply's status and text.
fn raw(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.trim_end().as_bytes()).unwrap();
    s.write_all(b"\r\nConnection: close\r\n\r\n").unwrap();
    s.write_all(body).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn s3_table(g: &Garage, endpoint: &str, extra: &str) -> String {
    format!(
        "[s3]\nendpoint = \"{endpoint}\"\nregion = \"garage\"\npath_style = true\n\
         access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n{extra}",
        g.access_key, g.secret_key
    )
}

/// 12 files of 200 KB in two folders.
fn source(env: &Env) -> PathBuf {
    let src = env.path("src");
    for i in 0..12u64 {
        let d = src.join(format!("d{}", i % 2));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{i}")), bytes(200_000, 40 + i)).unwrap();
    }
    src
}

#[test]
fn a_logged_request_cannot_be_replayed_nor_its_body_changed() {
    use bmbackup::store::backend::Backend;
    let _turn = CONFIGURED.lock().unwrap_or_else(|e| e.into_inner());
    let g = Garage::start_logging("garage=info");
    let (b, sent, _) = tapped_backend(&g);
    let original = bytes(100_000, 1);
    b.write_atomic("packs/aa/one.pack", &original).unwrap();

    // The PUT as it went on the wire: a bare path, the signature in a header, over the body's
    // hash.
    let wire = sent.lock().unwrap().clone();
    let end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(wire[..end].to_vec()).unwrap();
    assert_eq!(&wire[end + 4..end + 4 + original.len()], &original[..]);
    let line = head.lines().next().unwrap();
    let path = line.split(' ').nth(1).unwrap();
    assert!(line.starts_with("PUT /") && !path.contains('?'), "{line}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("authorization: aws4-hmac-sha256 credential="),
        "{head}"
    );
    let hash = bmbackup::store::sigv4::payload_hash(&original);
    assert!(
        lower.contains(&format!("x-amz-content-sha256: {hash}")),
        "{head}"
    );

    // Garage logs the request line: that is all an onlooker of the log gets.
    let log = g.log();
    assert!(log.contains(path), "Garage does not log {path}:\n{log}");
    assert!(!log.contains("Signature="), "{log}");
    let host = format!("Host: 127.0.0.1:{}\r\n", g.s3_port);
    let (status, reply) = raw(g.s3_port, &format!("GET {path} HTTP/1.1\r\n{host}"), b"");
    assert_eq!(status, 403, "GET of a logged URL: {reply}");
    let junk = vec![b'x'; 64];
    let (status, reply) = raw(
        g.s3_port,
        &format!("PUT {path} HTTP/1.1\r\n{host}Content-Length: 64\r\n"),
        &junk,
    );
    assert_eq!(status, 403, "PUT to a logged URL: {reply}");

    // The whole captured request, headers and all, with one byte of the body changed: refused.
    let mut forged = original.clone();
    forged[5000] ^= 1;
    let (status, reply) = raw(g.s3_port, &head, &forged);
    assert!(
        (400..500).contains(&status),
        "a changed body was taken: {reply}"
    );
    b.forget("packs/aa/one.pack");
    assert_eq!(b.read_all("packs/aa/one.pack").unwrap(), original);
    // The same request unchanged goes through (so the refusal above is the body's doing).
    let (status, reply) = raw(g.s3_port, &head, &original);
    assert_eq!(status, 200, "{reply}");
}

#[test]
fn a_private_ca_and_an_https_proxy_work_and_tls_failures_are_immediate() {
    let g = Garage::start();
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let https = format!("https://127.0.0.1:{}", tls_front(&pki, g.s3_port));
    let location = g.new_location();

    // The CA is not among the system's roots: refused at once, naming the setting to use.
    let env = Env::uninit_at(&location, &s3_table(&g, &https, ""));
    let t = Instant::now();
    let err = env.fails(&["init", &location]);
    eprintln!("untrusted ({:?}): {err}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(
        err.contains("not trusted") && err.contains("ca_file"),
        "{err}"
    );

    // With ca_file: init, backup, restore through TLS.
    let ca = format!("ca_file = \"{}\"\n", pki.ca.display());
    let env = Env::uninit_at(&location, &s3_table(&g, &https, &ca));
    env.ok(&["init", &location]);
    let src = source(&env);
    let snap = env.backup("h", "mail/imap", &src);
    env.restore_matches(snap["id"].as_str().unwrap(), &src);

    // The system's roots are read the standard way: SSL_CERT_FILE works without ca_file.
    let plain = Env::uninit_at(&location, &s3_table(&g, &https, ""));
    let out = plain
        .cmd(&["snapshots"])
        .env("SSL_CERT_FILE", &pki.ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));

    // Through an HTTPS proxy, unless NO_PROXY names the host.
    let (proxy, tunnels) = connect_proxy();
    let via = |no_proxy: &str| {
        let out = env
            .cmd(&["snapshots"])
            .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy}"))
            .env("NO_PROXY", no_proxy)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        tunnels.load(Ordering::SeqCst)
    };
    let n = via("example.org");
    assert!(n >= 1, "the proxy was not used");
    assert_eq!(via("localhost,127.0.0.1"), n, "NO_PROXY was not honoured");

    // https:// to Garage's plain HTTP port: at once, saying so.
    let wrong = format!("https://127.0.0.1:{}", g.s3_port);
    let bad = Env::uninit_at(&location, &s3_table(&g, &wrong, &ca));
    let t = Instant::now();
    let err = bad.fails(&["snapshots"]);
    eprintln!("https to http ({:?}): {err}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(err.contains("speak TLS"), "{err}");
}

#[test]
fn what_cannot_heal_fails_at_once_and_names_the_cause() {
    let g = Garage::start();
    let location = g.new_location();
    let quick = |env: &Env, args: &[&str]| {
        let t = Instant::now();
        let err = env.fails(args);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}: {err}",
            t.elapsed()
        );
        eprintln!("{args:?} ({:?}): {err}", t.elapsed());
        err
    };
    // An unknown host.
    let env = Env::uninit_at(
        &location,
        &s3_table(&g, "http://no-such-host.invalid:3900", ""),
    );
    let err = quick(&env, &["init", &location]);
    assert!(
        err.contains("cannot resolve") && err.contains("no-such-host.invalid"),
        "{err}"
    );
    // A missing bucket.
    let missing = "s3://no-such-bucket/x";
    let env = Env::uninit_at(missing, &g.config_table());
    let err = quick(&env, &["snapshots"]);
    assert!(err.contains("\"no-such-bucket\""), "{err}");
    let err = quick(&env, &["init", missing]);
    assert!(err.contains("\"no-such-bucket\""), "{err}");
    // A wrong region.
    let table = g
        .config_table()
        .replace("region = \"garage\"", "region = \"eu-west-3\"");
    let env = Env::uninit_at(&location, &table);
    let err = quick(&env, &["init", &location]);
    assert!(
        err.contains("expects region \"garage\", not \"eu-west-3\""),
        "{err}"
    );
}

#[test]
fn a_run_counts_its_requests_and_bytes() {
    let g = Garage::start();
    let location = g.new_location();
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("metrics_dir = \"{}\"\n", dir.path().display());
    let env = Env::uninit_at(&location, &format!("{metrics}{}", g.config_table()));
    env.ok(&["init", &location]);
    let src = source(&env);
    let part = format!("mail/imap={}", src.display());
    let out = env
        .cmd(&["-v", "backup", "--host", "h", "--part", &part])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("S3: ") && l.contains("requests"))
        .unwrap_or_else(|| panic!("no S3 summary in -v: {text}"));
    eprintln!("backup: {line}");
    assert!(line.contains("PUT") && line.contains("MiB up"), "{line}");
    let prom = fs::read_to_string(dir.path().join("bmbackup.prom")).unwrap();
    let value = |name: &str| -> f64 {
        prom.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{prom}"))
    };
    // 2.4 MB of incompressible files went up.
    assert!(value("bmbackup_s3_bytes_uploaded{") > 2_300_000.0, "{prom}");
    assert!(value("bmbackup_s3_requests{") >= 0.0);
    assert!(prom.contains("op=\"PUT\""), "{prom}");
    assert_eq!(value("bmbackup_s3_retries{"), 0.0);

    // A full restore's traffic, for the record (the bench reports it per operation).
    let out = env
        .cmd(&[
            "-v",
            "restore",
            "h/mail/imap/last",
            env.path("out").to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    let line = text.lines().find(|l| l.contains("S3: ")).unwrap_or("");
    eprintln!("restore: {line}");
    assert!(line.contains("GET") && line.contains("down"), "{text}");
}

#[test]
fn upload_limit_paces_a_backup() {
    let g = Garage::start();
    let location = g.new_location();
    let env = Env::uninit_at(&location, &g.config_table());
    env.ok(&["init", &location]);
    let src = source(&env);
    let t = Instant::now();
    env.backup("free", "mail/imap", &src);
    let free = t.elapsed();
    // The same 2.4 MB, new to the store (another host's copy with other bytes), at 400 KiB/s.
    let limited = Env::uninit_at(
        &location,
        &format!("{}upload_limit = \"400K\"\n", g.config_table()),
    );
    let src2 = limited.path("src");
    for i in 0..12u64 {
        let d = src2.join(format!("d{}", i % 2));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{i}")), bytes(200_000, 900 + i)).unwrap();
    }
    let t = Instant::now();
    limited.backup("paced", "mail/imap", &src2);
    let paced = t.elapsed();
    eprintln!("backup of 2.4 MB: {free:?} unlimited, {paced:?} at 400 KiB/s");
    assert!(paced >= Duration::from_secs(5), "{paced:?}");
    assert!(paced < Duration::from_secs(30), "{paced:?}");
}

/// A figure of a `-v` S3 line: the bytes before `after` (" up", " down") or the count after
/// `before` ("GET ").
fn bytes_in(line: &str, after: &str) -> f64 {
    let (n, unit) = line
        .split(", ")
        .find(|p| p.ends_with(after))
        .and_then(|p| p.strip_suffix(after))
        .and_then(|p| p.trim().split_once(' '))
        .unwrap_or_else(|| panic!("no {after} in {line}"));
    let scale = match unit {
        "MiB" => 1048576.0,
        "KiB" => 1024.0,
        _ => 1.0,
    };
    n.parse::<f64>().unwrap() * scale
}

fn count_of(line: &str, op: &str) -> u64 {
    line.split(['(', ',', ')'])
        .find_map(|p| p.trim().strip_prefix(op))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A full restore of a mail spool (106 MB, 38 MiB stored) downloads each needed range of a
/// pack once, several at a time: it took 305 GETs of 1 MiB windows and 302 MiB (7.9 times the
/// store) when blobs were fetched window by window in the restore's order.
#[test]
fn a_full_restore_downloads_each_range_once() {
    let g = Garage::start();
    let location = g.new_location();
    let env = Env::uninit_at(&location, &g.config_table());
    env.ok(&["init", &location]);
    let spool = env.path("spool");
    env.ok(&[
        "generate",
        "spool",
        "--preset",
        "quick",
        spool.to_str().unwrap(),
    ]);
    let verbose = |args: &[&str]| {
        let mut all = vec!["-v"];
        all.extend_from_slice(args);
        let out = env.cmd(&all).env_remove("RUST_LOG").output().unwrap();
        let text = show(&out);
        assert!(out.status.success(), "{text}");
        let line = text
            .lines()
            .find(|l| l.contains("S3: "))
            .unwrap_or_else(|| panic!("no S3 line: {text}"))
            .to_string();
        eprintln!("{args:?}: {line}");
        line
    };
    let part = format!("mail/imap={}", spool.display());
    let backup = verbose(&["backup", "--host", "h", "--part", &part]);
    let out = env.path("out");
    let t = Instant::now();
    let restore = verbose(&["restore", "h/mail/imap/last", out.to_str().unwrap()]);
    eprintln!("full restore: {:?}", t.elapsed());
    let (up, down) = (bytes_in(&backup, " up"), bytes_in(&restore, " down"));
    assert!(
        down <= 1.1 * up,
        "restore downloaded {down} B for {up} B stored"
    );
    assert!(count_of(&restore, "GET ") <= 20, "{restore}");
    common::assert_same_tree_with(&spool, &out, &common::CompareOptions::default());
}

/// A sequential read (the mount reading a big file) fetches the next windows along with the
/// one it needs: several requests in flight, each window fetched once.
#[test]
fn a_sequential_read_fetches_ahead_in_parallel() {
    use bmbackup::store::backend::Backend;
    use bmbackup::store::s3::WINDOW;
    let _turn = CONFIGURED.lock().unwrap_or_else(|e| e.into_inner());
    let g = Garage::start();
    let (b, _, connections) = tapped_backend(&g);
    let data = bytes(8 * WINDOW as usize + 1000, 5);
    b.write_atomic("packs/bb/big.pack", &data).unwrap();
    let before_connections = connections.load(Ordering::SeqCst);
    let before = bmbackup::store::s3http::totals();
    let mut read = Vec::new();
    let step = 64 << 10;
    let mut off = 0;
    while off < data.len() {
        let n = step.min(data.len() - off);
        read.extend(b.read_range("packs/bb/big.pack", off as u64, n).unwrap());
        off += n;
    }
    assert!(read == data, "the bytes read differ");
    let d = bmbackup::store::s3http::totals().since(&before);
    let used = connections.load(Ordering::SeqCst) - before_connections;
    eprintln!(
        "sequential read of 8 MiB: {} GETs, {} connections",
        d.requests[0], used
    );
    // 9 windows, plus at most 3 asked past the end.
    assert!(d.requests[0] >= 9 && d.requests[0] <= 12, "{d:?}");
    assert!(
        used >= 3,
        "requests were not in flight together: {used} connections"
    );
}
