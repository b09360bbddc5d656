//! What the man pages say beyond the argument definitions: EXIT STATUS, ENVIRONMENT, FILES,
//! EXAMPLES and SEE ALSO of bmbackup(1) and its command pages, and the bmbackup.toml(5) page,
//! whose body is the example configuration itself (so the page and the example cannot differ).
//! Plain roff; SEE ALSO names only pages `bmbackup docs` writes.

/// The exit codes (as the README and `cli/mod.rs` give them).
pub const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success.
.TP
.B 1
An error: a host, part, snapshot or user the store does not have (the message lists what
exists), a date before the first snapshot, no match for \fBfind\fR, damage found by
\fBcheck\fR, a part or hook that failed in \fBbackup\fR.
.TP
.B 2
Bad usage: an unknown option or mount option, a WHEN that does not parse, options that need
another, a deletion without \fB\-\-yes\fR and no terminal to ask on.
.TP
.B 3
Finished, but some files were not backed up or restored (the output lists them).
.TP
.B 130, 143
Interrupted by SIGINT (Ctrl\-C) or SIGTERM: the command removed its own lock and temp files;
what it had written stays and the next run reuses it.
"#;

/// Only on bmbackup(1): the environment, files and examples of every command.
pub const MAIN_EXTRA: &str = r#".SH ENVIRONMENT
.TP
.B BMBACKUP_STORE
The store, as \fB\-\-store\fR (a folder or s3://BUCKET/PREFIX).
.TP
.B BMBACKUP_CACHE
The catalog's folder, as \fB\-\-cache\-dir\fR.
.TP
.B BMBACKUP_CONFIG
The configuration file, as \fB\-\-config\fR.
.TP
.B RUST_LOG
Log filter over \fB\-v\fR and \fB\-q\fR (e.g. RUST_LOG=debug).
.TP
.B AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
A store on S3 when the configuration has no [s3] table.
.TP
.B NOTIFY_SOCKET, JOURNAL_STREAM
Set by systemd: \fBmount \-f\fR reports readiness; log lines carry syslog priorities.
.SH FILES
.TP
.B /etc/bmbackup/bmbackup.toml
The configuration (see \fBbmbackup.toml\fR(5)).
.TP
.B /etc/bmbackup/console\-password
The web console's password hash.
.TP
.B /var/cache/bmbackup
The catalog (for root): a rebuildable SQLite index of the store.
.TP
.B STORE/locks/
Lock files naming host, pid, command and start time.
.SH EXAMPLES
.nf
bmbackup init /srv/bmstore
bmbackup backup                               # the configured parts of this server
bmbackup backup \-\-part mail/imap              # one configured part
bmbackup snapshots \-\-part mail/imap
bmbackup restore \-\-part mail/imap \-\-at 7d example.com/user/jdoe /tmp/jdoe
bmbackup restore\-user jdoe@example.com \-\-at 2026\-11\-20
bmbackup find \-\-at last '**/user/jdoe/Sent/*'
bmbackup forget \-\-keep\-daily 7 \-\-keep\-weekly 4 \-\-prune
bmbackup mount /var/backups/bluemind
.fi
"#;

/// SEE ALSO of bmbackup(1): its command pages and the configuration page.
pub fn see_also_main(commands: &[String]) -> String {
    let mut refs: Vec<String> = commands
        .iter()
        .map(|c| format!("\\fBbmbackup\\-{}\\fR(1)", c.replace('-', "\\-")))
        .collect();
    refs.push("\\fBbmbackup.toml\\fR(5)".into());
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(", "))
}

/// SEE ALSO of a command's page.
pub const SEE_ALSO_COMMAND: &str =
    ".SH \"SEE ALSO\"\n\\fBbmbackup\\fR(1), \\fBbmbackup.toml\\fR(5)\n";

/// bmbackup.toml(5): a short description, then the example configuration verbatim.
pub fn config_page(version: &str) -> String {
    let example = include_str!("../../examples/bmbackup.toml");
    let mut body = String::new();
    for line in example.lines() {
        // Roff: a backslash is \e; a line starting with . or ' would be a request.
        let line = line.replace('\\', "\\e");
        if line.starts_with('.') || line.starts_with('\'') {
            body.push_str("\\&");
        }
        body.push_str(&line);
        body.push('\n');
    }
    format!(
        r#".TH bmbackup.toml 5 "" "bmbackup {version}" "File Formats"
.SH NAME
bmbackup.toml \- configuration of bmbackup
.SH SYNOPSIS
/etc/bmbackup/bmbackup.toml, or the file given by \fB\-\-config\fR or BMBACKUP_CONFIG
.SH DESCRIPTION
A TOML file: the store, this server's address, compression, the parts to back up with their
hooks, the retention policy \fBbackup\fR applies after a successful run, metrics, where each
user's data sits for \fBrestore\-user\fR, the web console and an S3 store's settings. Unknown
keys are errors, so a typo never silently disables a part or a rule. Command\-line options and
environment variables override the file's values.
.PP
The example below (installed as /etc/bmbackup/bmbackup.toml.example) lists every key with its
meaning in comments.
.SH EXAMPLE
.nf
{body}.fi
.SH "SEE ALSO"
\fBbmbackup\fR(1)
"#
    )
}
