"""Turns bench/run's results into the printed tables, the targets' PASS/MISS, results.json, an
SVG bar plot of the headline ratios and (full runs) bench/RESULTS.md. Pure formatting: no
measurement happens here, so it can be re-run on a saved results.json:

    python3 bench/report.py bench/out/results.json
"""
import json
import os
import re
import shutil
import sys

TOOLS = ["bmbackup", "bmbackup-s3", "rsync", "restic", "borg"]
PEERS = TOOLS[1:]

# (key, label, kind); kind: s = seconds, b = bytes, k = KiB. "store:N" is store_bytes[N].
MEASURES = [
    ("first_backup_s", "first backup", "s"),
    ("first_backup_rss_kib", "first backup peak RSS", "k"),
    ("day_backup_s_median", "backup after a day of mail (median)", "s"),
    ("day_backup_rss_kib_max", "day backup peak RSS (max)", "k"),
    ("nochange_backup_s", "backup, nothing changed", "s"),
    ("store:0", "store after first backup", "b"),
    ("store:1", "store after 1 day", "b"),
    ("store:2", "store after 2 days", "b"),
    ("store:last", "store after {days} days", "b"),
    ("cache_bytes", "local cache (not in store size)", "b"),
    ("restore_s", "restore one {unit}", "s"),
    ("first_listing_s", "mount: time to first listing", "s"),
    ("ls_R_s", "ls -R of a snapshot, cold", "s"),
    ("ls_R_warm_s", "ls -R of a snapshot, warm", "s"),
    ("ls_lR_s", "ls -lR of a snapshot, cold", "s"),
    ("ls_lR_warm_s", "ls -lR of a snapshot, warm", "s"),
    ("ls_lR_noxattr_s", "ls -lR, mount -o noxattr, cold", "s"),
    ("ls_lR_noxattr_warm_s", "ls -lR, mount -o noxattr, warm", "s"),
    ("read_cold_s", "read every file, cold", "s"),
    ("read_warm_s", "read every file, warm", "s"),
    ("daemon_rss_kib", "mount daemon peak RSS", "k"),
]
VS_ORIGINAL = {"ls_R_s", "ls_R_warm_s", "ls_lR_s", "ls_lR_warm_s", "ls_lR_noxattr_s",
               "ls_lR_noxattr_warm_s", "read_cold_s", "read_warm_s"}
# bmbackup-only rows compared with another key's figure on the original folder.
ORIGINAL_KEY = {"ls_lR_noxattr_s": "ls_lR_s", "ls_lR_noxattr_warm_s": "ls_lR_warm_s"}


def value(r, key):
    if r is None:
        return None
    if key == "day_backup_rss_kib_max":
        v = [x for x in r.get("day_backup_rss_kib", []) if x is not None]
        return max(v) if v else None
    if key.startswith("store:"):
        sizes = r.get("store_bytes", {})
        if key == "store:last":
            days = [int(d) for d in sizes if int(d) > 2]
            return sizes[str(max(days))] if days else None
        return sizes.get(key[6:])
    return r.get(key)


def fmt(v, kind):
    if v is None:
        return "n/a"
    if kind == "s":
        return f"{v:.3f} s" if v < 1 else f"{v:.2f} s" if v < 100 else f"{v:.0f} s"
    if kind == "b":
        return f"{v / 2**20:.1f} MiB"
    if kind == "k":
        return f"{v / 1024:.1f} MiB"
    return str(v)


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def ratio(a, b):
    return a / b if a is not None and b else None


def label(lbl, ds):
    return lbl.format(days=ds.get("days", 0) if ds.get("days", 0) > 2 else "N",
                      unit="user's folders" if ds.get("days") else "folder")


def rows(ds):
    """[(label, kind, key, {column: value})] for the measures this data set has."""
    out = []
    for key, lbl, kind in MEASURES:
        vals = {t: value(ds["tools"].get(t), key) for t in TOOLS if t in ds["tools"]}
        if key in VS_ORIGINAL:
            vals["original"] = ds["original"].get(ORIGINAL_KEY.get(key, key))
        if key.startswith("store:") and key != "store:0" and not ds.get("days"):
            continue
        if key.startswith("day_") and not ds.get("days"):
            continue
        if all(v is None for v in vals.values()):
            continue
        out.append((label(lbl, ds), kind, key, vals))
    return out


def ratio_rows(ds):
    out = []
    for lbl, kind, key, vals in rows(ds):
        if key == "cache_bytes":
            continue
        bm = vals.get("bmbackup")
        # rsync has no mount process: its mount-only figures have nothing to compare with.
        rr = {p: None if (p == "rsync" and key in ("first_listing_s", "daemon_rss_kib"))
              else ratio(bm, vals.get(p)) for p in PEERS if p in vals}
        if key in VS_ORIGINAL:
            rr["original"] = ratio(bm, vals.get("original"))
        out.append((lbl, key, rr))
    return out


def text_table(header, body):
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in body])


def md_table(header, body):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["--:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(out)


def tables(ds, table):
    cols = [t for t in TOOLS if t in ds["tools"]] + ["original"]
    fig = table(["measure"] + cols,
                [[lbl] + [fmt(vals[c], kind) if c in vals else "" for c in cols]
                 for lbl, kind, key, vals in rows(ds)])
    rcols = [p for p in PEERS if p in ds["tools"]] + ["original"]
    rat = table(["bmbackup ÷"] + rcols,
                [[lbl] + [fmt_ratio(rr[c]) if c in rr else "" for c in rcols]
                 for lbl, key, rr in ratio_rows(ds)])
    return fig, rat


# Targets: (data sets, description, kind, key, peer or None, limit). kind "ratio": bmbackup ÷
# peer <= limit; "abs": bmbackup's value < limit (seconds or KiB).
def targets(res):
    rss_limit = (64 + res.get("chunk_cache_mib", 256)) * 1024
    return [
        (("mail", "tree"), "first backup no slower than rsync -a", "ratio", "first_backup_s", "rsync", 1.0),
        (("mail", "tree"), "first backup ≥3× faster than restic", "ratio", "first_backup_s", "restic", 1 / 3),
        (("mail",), "a day of mail ≥5× faster than rsync --link-dest", "ratio", "day_backup_s_median", "rsync", 1 / 5),
        (("mail",), "a day of mail ≥5× faster than restic", "ratio", "day_backup_s_median", "restic", 1 / 5),
        (("mail", "tree"), "no-change backup ≥3× faster than restic", "ratio", "nochange_backup_s", "restic", 1 / 3),
        (("mail",), "store after 10 days ≥20% smaller than restic's", "ratio", "store:last", "restic", 0.8),
        (("mail",), "store after 10 days ≥20% smaller than borg's", "ratio", "store:last", "borg", 0.8),
        (("mail", "tree"), "first listing after mount < 0.5 s", "abs", "first_listing_s", None, 0.5),
        (("mail", "tree"), "ls -R within 2× of the original folder, cold", "ratio", "ls_R_s", "original", 2.0),
        (("mail", "tree"), "ls -R within 2× of the original folder, warm", "ratio", "ls_R_warm_s", "original", 2.0),
        (("mail", "tree"), "ls -lR within 2× of the original folder, cold", "ratio", "ls_lR_s", "original", 2.0),
        (("mail", "tree"), "ls -lR within 2× of the original folder, warm", "ratio", "ls_lR_warm_s", "original", 2.0),
        (("mail", "tree"), "read every file, cold, within 1.5× of the original", "ratio", "read_cold_s", "original", 1.5),
        (("mail", "tree"), "read every file, warm, within 1.2× of the original", "ratio", "read_warm_s", "original", 1.2),
        (("mail", "tree"), f"mount daemon RSS < 64 MiB + {res.get('chunk_cache_mib', 256)} MiB cache", "abs", "daemon_rss_kib", None, rss_limit),
    ]


def evaluate(res):
    """[(data set, description, measured text, limit text, PASS|MISS|n/a, ratio or value, limit)]"""
    out = []
    for sets, desc, kind, key, peer, limit in targets(res):
        for dsname in sets:
            ds = res["datasets"].get(dsname)
            if not ds or "bmbackup" not in ds["tools"]:
                continue
            bm = value(ds["tools"]["bmbackup"], key)
            if kind == "ratio":
                other = ds["original"].get(key) if peer == "original" else value(ds["tools"].get(peer), key)
                v = ratio(bm, other)
                shown, lim = fmt_ratio(v), f"≤ {fmt_ratio(limit)}"
                ok = v is not None and v <= limit
            else:
                v = bm
                kind_u = "k" if key.endswith("kib") else "s"
                shown, lim = fmt(v, kind_u), f"< {fmt(limit, kind_u)}"
                ok = v is not None and v < limit
            status = "n/a" if v is None else "PASS" if ok else "MISS"
            if key == "store:last" and ds.get("days", 0) != 10:
                desc = desc.replace("10 days", f"{ds.get('days')} days (target: 10)")
            out.append((dsname, desc, shown, lim, status, v, limit, kind))
    return out


def svg(res, evals):
    """Horizontal bars of bmbackup ÷ peer (log scale); a tick marks each target's limit."""
    bars = [(f"{ds}: {d}", v, lim) for ds, d, _, _, st, v, lim, kind in evals
            if kind == "ratio" and v is not None]
    w, left, row, top = 900, 420, 26, 50
    h = top + row * len(bars) + 50
    import math
    lo, hi = 1 / 64, 16
    x = lambda r: left + (w - left - 20) * (math.log(min(max(r, lo), hi)) - math.log(lo)) / (math.log(hi) - math.log(lo))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="10" y="22" font-size="15" font-weight="bold">bmbackup ÷ peer (log scale; left of 1× = bmbackup faster or smaller; '
           f'| = target){" — quick run" if res.get("quick") else ""}</text>']
    for t in [1 / 64, 1 / 16, 1 / 4, 1, 4, 16]:
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 8}" x2="{x(t):.1f}" y2="{h - 40}" stroke="#ddd"/>')
        out.append(f'<text x="{x(t):.1f}" y="{h - 25}" text-anchor="middle">{"1/" + str(round(1 / t)) if t < 1 else round(t)}×</text>')
    for i, (name, v, lim) in enumerate(bars):
        y = top + i * row
        color = "#3a7" if v <= lim else "#d54"
        x0, x1 = sorted((x(1), x(v)))
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{esc(name)}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(1, x1 - x0):.1f}" height="{row - 8}" fill="{color}"/>')
        out.append(f'<line x1="{x(lim):.1f}" y1="{y + 1}" x2="{x(lim):.1f}" y2="{y + row - 1}" stroke="black" stroke-width="2"/>')
        out.append(f'<text x="{max(x(1), x(v), x(lim)) + 5:.1f}" y="{y + 15}">{fmt_ratio(v)}</text>')
    out.append(f'<line x1="{x(1):.1f}" y1="{top - 8}" x2="{x(1):.1f}" y2="{h - 40}" stroke="#888"/>')
    out.append("</svg>")
    return "\n".join(out)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_text(res, evals):
    out = []
    for name, ds in res["datasets"].items():
        fig, rat = tables(ds, text_table)
        out += [f"\n== {name}: {ds['describe']}", f"   restored folder: {ds['restore_rel']}", "", fig, "", rat]
        notes = [f"{t}: {n}" for t, r in ds["tools"].items() for n in r.get("notes", [])]
        if notes:
            out += ["", "notes: " + "; ".join(notes)]
    out += ["", "== targets"]
    out += [f"{st:4}  {ds:4}  {d}: {shown} ({lim})" for ds, d, shown, lim, st, *_ in evals]
    out += ["", f"generator: {res['generator']}",
            f"bmbackup mount: {'available' if res['bmbackup_mount'] else 'not available'}",
            "caches dropped for 'cold' figures" if res["caches_dropped"]
            else "caches NOT dropped (writing /proc/sys/vm/drop_caches not permitted): 'cold' figures are warm"]
    return "\n".join(out)


def render_md(res, evals):
    m = res["machine"]
    out = ["# Benchmark results", "",
           "Generated by `bench/run` (full scale); do not edit by hand. See `bench/README.md` for what "
           "is measured.", "",
           "## Machine", "",
           f"- CPUs: {m['nproc']} × {m['cpu']}", f"- RAM: {m['ram']}", f"- kernel: {m['kernel']}",
           f"- disk: {m['disk']}",
           f"- load average when the run started: {' '.join(m.get('loadavg_at_start', []))}"
           f" (the machine is shared; the bench ran at niceness {m.get('niceness', 0)})"]
    out += [f"- {k}: {v}" for k, v in m["versions"].items()]
    out += [f"- data generator: {res['generator']}; seed {res['seed']}; {res['days']} simulated days",
            f"- {'caches dropped for cold figures' if res['caches_dropped'] else 'caches could not be dropped: cold figures are warm'}",
            f"- run time: {res.get('elapsed_s', 0) / 60:.0f} min", "",
            "![bmbackup ÷ peer](RESULTS.svg)", ""]
    for name, ds in res["datasets"].items():
        fig, rat = tables(ds, md_table)
        out += [f"## {name}: {ds['describe']}", "", f"Restored folder: `{ds['restore_rel']}`.", "",
                fig, "", "Ratios (below 1: bmbackup is faster or smaller):", "", rat, ""]
    out += ["## Targets", "", md_table(["", "data", "target", "measured", "limit"],
                                       [[st, ds, d, shown, lim] for ds, d, shown, lim, st, *_ in evals]), ""]
    return "\n".join(out)


SECTION = re.compile(r"<!-- begin (?P<name>[\w-]+) -->\n.*?<!-- end (?P=name) -->\n", re.S)


def kept_sections(results_md):
    """Sections of RESULTS.md that other runs own (bench/scale, the store on S3): a full
    `bench/run` regenerates the rest and keeps these as they are."""
    try:
        with open(results_md) as f:
            return [m.group(0) for m in SECTION.finditer(f.read())]
    except FileNotFoundError:
        return []


def put_section(results_md, name, body):
    """Writes (or replaces) the section `name` of RESULTS.md, leaving the rest untouched."""
    block = f"<!-- begin {name} -->\n{body.rstrip()}\n<!-- end {name} -->\n"
    try:
        with open(results_md) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmark results\n\n"
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->\n.*?<!-- end {re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    with open(results_md, "w") as f:
        f.write(text)


def render_s3_section(res):
    """The store on S3 beside the local store, from a run with --tools bmbackup,bmbackup-s3."""
    ds = res["datasets"]["mail"]
    m = res["machine"]
    fig, _ = tables(ds, md_table)
    rat = md_table(["measure", "bmbackup-s3 ÷ bmbackup"],
                   [[lbl, fmt_ratio(ratio(vals.get("bmbackup-s3"), vals.get("bmbackup")))]
                    for lbl, kind, key, vals in rows(ds)
                    if vals.get("bmbackup-s3") is not None and vals.get("bmbackup") is not None])
    return "\n".join([
        "## The store on S3-compatible object storage (Garage on loopback)", "",
        f"Generated by `bench/run{' --quick' if res.get('quick') else ''} --tools bmbackup,bmbackup-s3 "
        f"--datasets mail` ({m['versions'].get('bmbackup', '?')}; load average at start "
        f"{' '.join(m.get('loadavg_at_start', []))}). `bmbackup-s3` is the same binary with its store "
        "on a single-node Garage 2.5.0 on 127.0.0.1 (the debug build CI uses: unoptimised, so its "
        "reads are slow; see bench/README.md).", "",
        f"Data: {ds['describe']}.", "", fig, "",
        "The store on Garage against the local store (above 1: slower or bigger on S3):", "", rat, ""])


def finish(res, out, write_results_md=False, results_md=None, s3_section_md=None):
    os.makedirs(out, exist_ok=True)
    evals = evaluate(res)
    res["targets"] = [{"dataset": ds, "target": d, "measured": shown, "limit": lim, "status": st}
                      for ds, d, shown, lim, st, *_ in evals]
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    plot = svg(res, evals)
    with open(os.path.join(out, "ratios.svg"), "w") as f:
        f.write(plot)
    text = render_text(res, evals)
    with open(os.path.join(out, "results.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    print(f"\nresults: {out}/results.json, {out}/results.txt, {out}/ratios.svg")
    if write_results_md and results_md:
        kept = kept_sections(results_md)
        with open(results_md, "w") as f:
            f.write(render_md(res, evals) + "".join("\n" + k for k in kept))
        shutil.copy(os.path.join(out, "ratios.svg"), os.path.join(os.path.dirname(results_md), "RESULTS.svg"))
        print(f"wrote {results_md}")
    if s3_section_md:
        put_section(s3_section_md, "s3", render_s3_section(res))
        print(f"wrote the S3 section of {s3_section_md}")


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        r = json.load(f)
    finish(r, os.path.dirname(os.path.abspath(sys.argv[1])))
