#!/usr/bin/env python3
"""IMAP/LMTP client of the private Cyrus server that tests/cyrus_restore_user.rs starts.

Commands (all print JSON on stdout, exit non-zero with a message on failure):
  create  IMAP_PORT MAILBOX...         create mailboxes as the admin; each gets "anyone p" so
                                       LMTP can deliver to user+folder addresses
  deliver LMTP_PORT RCPT COUNT SEED    deliver COUNT generated messages (every third with a
                                       binary attachment) to RCPT over LMTP
  append  IMAP_PORT MAILBOX COUNT SEED  append COUNT generated messages to MAILBOX over IMAP
  flag    IMAP_PORT MAILBOX UIDS FLAGS  add FLAGS (e.g. "\\Flagged $Label") to UIDS (e.g. 1:3)
  dump    IMAP_PORT MAILBOX...         per mailbox: uidvalidity, uidnext and every message's uid,
                                       Message-ID, flags and SHA-256 of the whole message and of
                                       its body; a missing mailbox is null
  list    IMAP_PORT                    every mailbox name the admin sees
  expunge IMAP_PORT MAILBOX            delete every message of MAILBOX
  delete  IMAP_PORT MAILBOX            delete MAILBOX
Admin login: cyrus / secret (the test's sasldb).
"""
import hashlib
import imaplib
import json
import re
import smtplib
import sys

ADMIN = ("cyrus", "secret")
ALL = "lrswipkxtecdan"


def imap(port):
    m = imaplib.IMAP4("127.0.0.1", int(port))
    m.login(*ADMIN)
    return m


def check(res, what):
    typ, data = res
    if typ != "OK":
        sys.exit(f"imap_tool: {what}: {typ} {data!r}")
    return data


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cmd_create(port, *boxes):
    m = imap(port)
    for b in boxes:
        check(m.create(quote(b)), f"CREATE {b}")
        check(m.setacl(quote(b), "anyone", "p"), f"SETACL {b}")
        check(m.setacl(quote(b), ADMIN[0], ALL), f"SETACL {b}")
    return {"created": list(boxes)}


def message(rcpt, seed, i):
    mid = f"<{seed}-{i}@bmbackup.test>"
    body = f"Message {i} of {seed} for {rcpt}.\r\n" + ("line %d\r\n" % i) * (i % 7 + 1)
    head = (
        f"From: sender{i}@example.net\r\nTo: {rcpt}\r\nSubject: {seed} number {i}\r\n"
        f"Message-ID: {mid}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
    if i % 3 == 0:
        blob = hashlib.sha256(f"{seed}{i}".encode()).digest() * (64 + i)
        import base64

        att = base64.encodebytes(blob).decode().replace("\n", "\r\n")
        msg = (
            head
            + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            + "Content-Type: text/plain\r\n\r\n" + body
            + '--b1\r\nContent-Type: application/octet-stream; name="data.bin"\r\n'
            + "Content-Transfer-Encoding: base64\r\n\r\n" + att + "--b1--\r\n"
        )
    else:
        msg = head + "Content-Type: text/plain\r\n\r\n" + body
    return mid, msg.encode()


def cmd_deliver(port, rcpt, count, seed):
    l = smtplib.LMTP("127.0.0.1", int(port))
    ids = []
    for i in range(1, int(count) + 1):
        mid, msg = message(rcpt, seed, i)
        refused = l.sendmail("sender@example.net", [rcpt], msg)
        if refused:
            sys.exit(f"imap_tool: LMTP refused {rcpt}: {refused}")
        ids.append(mid)
    l.quit()
    return {"delivered": len(ids)}


def cmd_append(port, box, count, seed):
    m = imap(port)
    for i in range(1, int(count) + 1):
        _, msg = message(box, seed, i)
        check(m.append(quote(box), None, None, msg), f"APPEND {box}")
    return {"appended": int(count)}


def cmd_flag(port, box, uids, flags):
    m = imap(port)
    check(m.select(quote(box)), f"SELECT {box}")
    check(m.uid("STORE", uids, "+FLAGS", f"({flags})"), f"STORE {box}")
    return {"flagged": uids}


def header(raw, name):
    m = re.search(rb"^" + name.encode() + rb":\s*(.*?)\r?\n(?![ \t])", raw, re.I | re.M | re.S)
    return m.group(1).decode(errors="replace").strip() if m else None


def dump_one(m, box):
    typ, _ = m.select(quote(box), readonly=True)
    if typ != "OK":
        # A folder made by reconstruct has its owner's rights only: the admin gives itself
        # read rights (only on folders that exist), as cyradm's "sam" would.
        typ, _ = m.setacl(quote(box), ADMIN[0], ALL)
        if typ != "OK":
            return None
        check(m.select(quote(box), readonly=True), f"SELECT {box}")
    st = check(m.status(quote(box), "(UIDVALIDITY UIDNEXT MESSAGES)"), f"STATUS {box}")
    nums = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT|MESSAGES) (\d+)", st[0]))
    msgs = []
    data = check(m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])"), f"FETCH {box}")
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, raw = item
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
        flags = sorted(f for f in flags if f != "\\Recent")
        split = raw.find(b"\r\n\r\n")
        body = raw[split + 4:] if split >= 0 else b""
        msgs.append({
            "uid": uid,
            "message_id": header(raw, "Message-ID"),
            "flags": flags,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        })
    m.close()
    msgs.sort(key=lambda x: x["uid"])
    return {
        "uidvalidity": int(nums[b"UIDVALIDITY"]),
        "uidnext": int(nums[b"UIDNEXT"]),
        "messages": msgs,
    }


def cmd_dump(port, *boxes):
    m = imap(port)
    return {b: dump_one(m, b) for b in boxes}


def cmd_list(port):
    m = imap(port)
    data = check(m.list('""', "*"), "LIST")
    names = []
    for line in data:
        mm = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
        name = mm.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        names.append(name)
    return {"mailboxes": sorted(names)}


def cmd_expunge(port, box):
    m = imap(port)
    check(m.select(quote(box)), f"SELECT {box}")
    check(m.store("1:*", "+FLAGS", "(\\Deleted)"), f"STORE {box}")
    check(m.expunge(), f"EXPUNGE {box}")
    return {"expunged": box}


def cmd_delete(port, box):
    m = imap(port)
    check(m.setacl(quote(box), ADMIN[0], ALL), f"SETACL {box}")
    check(m.delete(quote(box)), f"DELETE {box}")
    return {"deleted": box}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    fn = globals().get("cmd_" + sys.argv[1])
    if fn is None:
        sys.exit(__doc__)
    try:
        out = fn(*sys.argv[2:])
    except (imaplib.IMAP4.error, smtplib.SMTPException, OSError) as e:
        sys.exit(f"imap_tool {sys.argv[1]}: {e}")
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
