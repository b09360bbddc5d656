#!/usr/bin/env python3
"""Stand-in for the hidden `bmbackup generate` subcommand, used by bench/run only while the
binary it benchmarks has no `generate` (same arguments, same spool layout, roughly the same
shape). Deterministic: every byte and every name is a function of --seed (and --day).

  standin_gen.py spool DIR [--preset demo|quick|full] [--seed N]
  standin_gen.py day DIR --seed N --day D
  standin_gen.py dbdump FILE --size BYTES --seed N
  standin_gen.py mutate-dbdump FILE --seed N --day D

Spool layout (as the real generator): DIR/<domain>/user/<local>/{<uid>., cyrus.header,
cyrus.index, cyrus.cache, Sent/, Archive/}.
"""
import argparse
import base64
import os
import random
import struct
import sys

BASE_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z, the "now" of a fresh spool
DAY = 86_400
FOLDERS = ["", "Sent", "Archive"]  # "" is INBOX, the user's own folder
PRESETS = {  # users, domains, mean messages per user
    "demo": (10, 2, 45),
    "quick": (60, 3, 75),
    "full": (300, 5, 320),
}
WORDS = ("the of and to in is you that it he was for on are as with his they at be this from "
         "have or by one had not but what all were when we there can an your which their said if "
         "do will each about how up out them then she many some so these would other into has "
         "more her two like him see time could no make than first been its who now people my "
         "made over did down only way find use may water long little very after words called "
         "just where most know meeting invoice report budget quarter server backup mailbox "
         "project review attached please thanks regards tomorrow monday schedule update").split()
DOMAINS = ["example.org", "bluemind.test", "acme.example", "corp.example", "mail.example"]
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"]


class Text:
    """A pool of word text; a message body is a slice of it at a random offset (fast, and two
    bodies never share a long identical run unless they are the same message)."""

    def __init__(self, rng, size=4 << 20):
        out, n = [], 0
        while n < size:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + "\n"
            out.append(line)
            n += len(line)
        self.pool = "".join(out).encode()

    def body(self, rng, size):
        size = min(size, len(self.pool) - 1)
        off = rng.randrange(0, len(self.pool) - size)
        return self.pool[off:off + size]


def lognormal_size(rng, median, sigma=0.8, cap=1 << 20):
    return max(64, min(cap, int(rng.lognormvariate(0, sigma) * median)))


def compose(rng, text, when, sender, to):
    size = lognormal_size(rng, 6144)
    parts = [f"From: {sender}\r\nTo: {to}\r\nSubject: {' '.join(rng.choice(WORDS) for _ in range(5))}\r\n"
             f"Date: {when}\r\nMessage-ID: <{rng.getrandbits(64):016x}@{sender.split('@')[1]}>\r\n"
             f"MIME-Version: 1.0\r\n\r\n".encode(), text.body(rng, size)]
    if rng.random() < 0.02:
        raw = rng.randbytes(min(3 << 20, int(rng.lognormvariate(0, 1.2) * (200 << 10))))
        parts.append(b"\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n")
        parts.append(base64.encodebytes(raw))
    return b"".join(parts)


def write(path, data, mtime):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    os.utime(path, (mtime, mtime))


def folder_uids(folder):
    return sorted(int(n[:-1]) for n in os.listdir(folder) if n.endswith(".") and n[:-1].isdigit())


def rewrite_index(folder, rng, mtime):
    """cyrus.index: a 64-byte header and a 64-byte record per message; Cyrus rewrites it whole."""
    uids = folder_uids(folder)
    out = [struct.pack("<4sIQ48x", b"CYRI", len(uids), mtime)]
    for uid in uids:
        out.append(struct.pack("<IQ", uid, mtime) + rng.randbytes(52))
    tmp = os.path.join(folder, "cyrus.index.NEW")
    write(tmp, b"".join(out), mtime)
    os.rename(tmp, os.path.join(folder, "cyrus.index"))


def append_cache(folder, msgs, mtime):
    """cyrus.cache: cached headers appended per delivered message."""
    path = os.path.join(folder, "cyrus.cache")
    with open(path, "ab") as f:
        for uid, data in msgs:
            f.write(struct.pack("<II", uid, min(len(data), 512)) + data[:512])
    os.chmod(path, 0o600)
    os.utime(path, (mtime, mtime))


def spool(args):
    users, domains, per_user = PRESETS[args.preset]
    rng = random.Random(f"spool:{args.seed}:{args.preset}")
    text = Text(rng)
    os.makedirs(args.dir, exist_ok=True)
    if os.listdir(args.dir):
        sys.exit(f"{args.dir} is not empty")
    boxes = []
    for u in range(users):
        dom = DOMAINS[u % domains]
        local = f"{NAMES[u % len(NAMES)]}.{u:04d}"
        boxes.append((f"{local}@{dom}", os.path.join(args.dir, dom, "user", local)))
    pending = {}  # folder -> list of messages
    for addr, home in boxes:
        n = max(3, int(rng.lognormvariate(0, 0.7) * per_user * 0.8))
        for _ in range(n):
            folder = os.path.join(home, rng.choices(FOLDERS, [6, 2, 2])[0])
            when = BASE_EPOCH - rng.randrange(365 * DAY)
            data = compose(rng, text, when, rng.choice(boxes)[0], addr)
            targets = [folder]
            if rng.random() < 0.2:  # delivered to several users: identical bytes
                targets += [rng.choice(boxes)[1] for _ in range(rng.randint(1, 3))]
            for t in targets:
                pending.setdefault(t, []).append((when, data))
    for addr, home in boxes:
        for f in FOLDERS:
            pending.setdefault(os.path.join(home, f), [])
    for folder in sorted(pending):
        os.makedirs(folder, exist_ok=True)
        msgs = sorted(pending[folder], key=lambda m: m[0])
        delivered = []
        for uid, (when, data) in enumerate(msgs, 1):
            write(os.path.join(folder, f"{uid}."), data, when)
            delivered.append((uid, data))
        write(os.path.join(folder, "cyrus.header"),
              f"Cyrus mailbox header\n{rng.getrandbits(64):016x}\nanyone\tlrs\n".encode(), BASE_EPOCH)
        append_cache(folder, delivered, BASE_EPOCH)
        rewrite_index(folder, rng, BASE_EPOCH)


def all_folders(root):
    out = []
    for dom in sorted(os.listdir(root)):
        udir = os.path.join(root, dom, "user")
        for local in sorted(os.listdir(udir)):
            home = os.path.join(udir, local)
            out.append([os.path.join(home, f) if f else home for f in FOLDERS])
    return out


def day(args):
    rng = random.Random(f"day:{args.seed}:{args.day}")
    text = Text(rng, 1 << 20)
    now = BASE_EPOCH + args.day * DAY
    users = all_folders(args.dir)
    msgs = [(f, uid) for folders in users for f in folders for uid in folder_uids(f)]
    n = len(msgs)
    touched = {}
    next_uid = {}

    def new_uid(folder):
        if folder not in next_uid:
            uids = folder_uids(folder)
            next_uid[folder] = (uids[-1] if uids else 0) + 1
        next_uid[folder] += 1
        return next_uid[folder] - 1

    for (folder, uid) in rng.sample(msgs, int(n * 0.003)):  # deleted
        os.unlink(os.path.join(folder, f"{uid}."))
        touched.setdefault(folder, [])
    remaining = [m for m in msgs if os.path.exists(os.path.join(m[0], f"{m[1]}."))]
    for (folder, uid) in rng.sample(remaining, int(n * 0.002)):  # moved to another folder
        home = next(fs for fs in users if folder in fs)
        dest = rng.choice([f for f in home if f != folder])
        nu = new_uid(dest)
        os.rename(os.path.join(folder, f"{uid}."), os.path.join(dest, f"{nu}."))
        with open(os.path.join(dest, f"{nu}."), "rb") as fh:
            touched.setdefault(dest, []).append((nu, fh.read(512)))
        touched.setdefault(folder, [])
    for _ in range(int(n * 0.01)):  # new mail
        folders = rng.choice(users)
        folder = folders[0] if rng.random() < 0.8 else rng.choice(folders)
        data = compose(rng, text, now, "someone@external.example", "user")
        nu = new_uid(folder)
        write(os.path.join(folder, f"{nu}."), data, now + rng.randrange(DAY))
        touched.setdefault(folder, []).append((nu, data))
    for folder in sorted(touched):
        append_cache(folder, touched[folder], now)
        rewrite_index(folder, rng, now)


def dump_bytes(rng, n):
    """Text-like bytes (a few bits of entropy per byte), like a SQL dump compresses."""
    table = bytes((b"abcdefghijklmnop0123456789\t \n,;" * 9)[:256])
    return rng.randbytes(n).translate(table)


def dbdump(args):
    rng = random.Random(f"dbdump:{args.seed}")
    with open(args.file, "wb") as f:
        left = args.size
        while left > 0:
            n = min(left, 1 << 20)
            f.write(dump_bytes(rng, n))
            left -= n


def mutate_dbdump(args):
    """Rewrites 2% of the file in place, in a few contiguous runs (tables that changed)."""
    rng = random.Random(f"mutate:{args.seed}:{args.day}")
    size = os.path.getsize(args.file)
    runs = max(1, size // (10 << 20))
    run_len = max(1, size * 2 // 100 // runs)
    with open(args.file, "r+b") as f:
        for _ in range(runs):
            f.seek(rng.randrange(0, max(1, size - run_len)))
            f.write(dump_bytes(rng, run_len))


def main():
    p = argparse.ArgumentParser(prog="standin_gen.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("spool")
    s.add_argument("dir")
    s.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    s.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("day")
    s.add_argument("dir")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--day", type=int, required=True)
    s = sub.add_parser("dbdump")
    s.add_argument("file")
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s = sub.add_parser("mutate-dbdump")
    s.add_argument("file")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--day", type=int, required=True)
    a = p.parse_args()
    {"spool": spool, "day": day, "dbdump": dbdump, "mutate-dbdump": mutate_dbdump}[a.cmd](a)


if __name__ == "__main__":
    main()
