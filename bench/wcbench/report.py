# SPDX-License-Identifier: MIT
"""Summaries, the target verdicts and the printed report."""

import statistics

REFERENCE = "recv-file"
TARGET_RATIO = 0.95
TARGET_US = 1.0
TARGET_US_KAFKA = 3.0
TARGET_RSS_MB = 64
TARGET_P99_MS = 50.0
TARGET_PGO_RATIO = 1.25
FULL_ROWS = 1000000


def summarize(wl, consumer):
    runs = wl["runs"].get(consumer)
    if not runs:
        return None
    walls = [r["wall"] for r in runs]
    cpus = [r["cpu"] for r in runs]
    ws = [r["walsender_cpu"] / r["wall"] for r in runs
          if r.get("walsender_cpu")]
    cb = [r["client_bound"] for r in runs if r.get("client_bound")
          is not None]
    wall = statistics.median(walls)
    cpu = statistics.median(cpus)
    user = statistics.median(r["user"] for r in runs)
    n = wl["changes"]
    return {
        "user": user, "user_us_change": user / n * 1e6 if n else None,
        "n": len(runs), "wall": wall, "wall_min": min(walls),
        "wall_max": max(walls), "changes_s": n / wall,
        "mb_s": wl["json_bytes"] / 1e6 / wall, "cpu": cpu,
        "us_change": cpu / n * 1e6 if n else None,
        "rss_mb": max(r["maxrss_kb"] for r in runs) / 1024.0,
        "walsender": statistics.median(ws) if ws else None,
        "client_bound": statistics.median(cb) if cb else None,
        "verified": all(r.get("verified", True) for r in runs),
    }


def add_ratios(wl, sums):
    """Throughput ratio to the reference, paired by repetition: in
    repetition i every consumer ran once, close in time, so the median of
    the per-repetition ratios is less exposed to a neighbour's load that
    comes and goes than the ratio of the medians."""
    ref = wl["runs"].get(REFERENCE)
    for c, s in sums.items():
        runs = wl["runs"].get(c)
        if s and ref and runs:
            s["ratio"] = statistics.median(
                a["wall"] / b["wall"] for a, b in zip(ref, runs))


def _fmt_int(v):
    return "{:,}".format(int(round(v)))


def table(headers, rows, align=None):
    """A Markdown table (readable as plain text too)."""
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    cells = [[str(c) for c in r] for r in rows]
    w = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
         for i, h in enumerate(headers)]

    def line(vals):
        out = []
        for i, v in enumerate(vals):
            out.append(v.ljust(w[i]) if align[i] == "l" else v.rjust(w[i]))
        return "| " + " | ".join(out) + " |"
    sep = "|" + "|".join(("-" * (w[i] + 1) + ":" if align[i] == "r"
                          else ":" + "-" * (w[i] + 1))
                         for i in range(len(w))) + "|"
    return "\n".join([line(headers), sep] + [line(r) for r in cells])


def workload_table(wl, consumers, labels):
    sums = {c: summarize(wl, c) for c in consumers}
    add_ratios(wl, sums)
    rows = []
    if wl["name"] == "baseline":
        for c in consumers:
            s = sums[c]
            if s:
                rows.append([labels[c], "%.3f (%.3f-%.3f)" % (
                    s["wall"], s["wall_min"], s["wall_max"]),
                    "%.3f (%.3f)" % (s["cpu"], s["user"]),
                    "%.2f" % (s["cpu"] / s["wall"]),
                    "%.1f" % s["rss_mb"]])
        return table(["consumer", "wall s, median (min-max)",
                      "CPU s (user)", "CPU/wall", "peak RSS MB"],
                     rows), sums
    for c in consumers:
        s = sums[c]
        if not s:
            continue
        rows.append([
            labels[c], _fmt_int(wl["changes"]),
            "%.2f (%.2f-%.2f)" % (s["wall"], s["wall_min"], s["wall_max"]),
            _fmt_int(s["changes_s"]), "%.1f" % s["mb_s"],
            "%.2f (%.2f)" % (s["cpu"], s["user"]),
            "%.2f (%.2f)" % (s["us_change"], s["user_us_change"]),
            "%.1f" % s["rss_mb"],
            "%.2f" % s["walsender"] if s["walsender"] is not None else "-",
            "%.0f %%" % (100 * s["client_bound"])
            if s["client_bound"] is not None else "-",
            ("%.2f" % s["ratio"] if "ratio" in s else "-")
            + ("" if s["verified"] else " INCOMPLETE OUTPUT")])
    return table(["consumer", "changes", "wall s, median (min-max)",
                  "changes/s", "MB/s", "CPU s (user)",
                  "µs CPU/change (user)",
                  "peak RSS MB", "walsender CPU/wall",
                  "walsender waiting for the client",
                  "vs pg_recvlogical > file (paired)"], rows), sums


def verdicts(res):
    """[(target, measured text, met: True/False/None)]"""
    out = []
    wls = {w["name"]: w for w in res["workloads"] if w["name"] != "baseline"}
    sums = res["summaries"]
    for cons in ("walcast-null", "walcast-file"):
        ratios = [(n, sums[n][cons]["ratio"]) for n in wls
                  if sums[n].get(cons) and "ratio" in sums[n][cons]]
        if not ratios:
            continue
        worst = min(ratios, key=lambda x: x[1])
        noise = [(n, sums[n]["recv-null"]["ratio"]) for n in wls
                 if sums[n].get("recv-null") and "ratio" in
                 sums[n]["recv-null"]]
        out.append((
            "file sink throughput >= %.2fx pg_recvlogical to a file on every "
            "workload (%s)" % (TARGET_RATIO, cons),
            "worst %.2fx (%s); %s%s" % (
                worst[1], worst[0],
                ", ".join("%s %.2f" % r for r in ratios),
                "" if not noise else "; pg_recvlogical > /dev/null, the same"
                " client as the reference, for scale: " + ", ".join(
                    "%s %.2f" % r for r in noise)),
            worst[1] >= TARGET_RATIO))
    us = [(n, sums[n]["walcast-null"]["user_us_change"],
           sums[n]["walcast-null"]["us_change"]) for n in wls
          if sums[n].get("walcast-null")]
    if us:
        worst = max(us, key=lambda x: x[1])
        out.append((
            "walcastd CPU <= %.1f µs/change for decode + route + dispatch + "
            "file sink (walcast-null; user CPU, which holds all of these; "
            "user+sys in brackets)" % TARGET_US,
            "worst %.2f µs (%s); %s" % (worst[1], worst[0], ", ".join(
                "%s %.2f (%.2f)" % u for u in us)),
            worst[1] <= TARGET_US))
    # issue 19: pgoutput against wal2json, walcastd with each
    pairs = [(n, sums[n]["walcast-pgo-null"], sums[n]["walcast-null"])
             for n in ("small", "big", "update", "delete") if n in wls
             and sums[n].get("walcast-pgo-null") and
             sums[n].get("walcast-null")]
    if pairs:
        sp = [(n, p["changes_s"] / w["changes_s"]) for n, p, w in pairs]
        worst = min(sp, key=lambda x: x[1])
        out.append((
            "walcastd with pgoutput >= %.2fx walcastd with wal2json in "
            "changes/s on small, big, update, delete (walcast-pgo-null vs "
            "walcast-null)" % TARGET_PGO_RATIO,
            "worst %.2fx (%s); %s" % (worst[1], worst[0], ", ".join(
                "%s %.2f" % x for x in sp)),
            worst[1] >= TARGET_PGO_RATIO))
        cpu = [(n, p["us_change"], w["us_change"]) for n, p, w in pairs]
        bad = [x for x in cpu if x[1] > x[2]]
        out.append((
            "walcastd's CPU per change with pgoutput <= with wal2json "
            "(user+sys µs/change, pgoutput / wal2json)",
            ", ".join("%s %.2f / %.2f" % x for x in cpu),
            not bad))
    us = [(n, sums[n]["walcast-kafka"]["user_us_change"],
           sums[n]["walcast-kafka"]["us_change"]) for n in wls
          if sums[n].get("walcast-kafka")]
    if us:
        worst = max(us, key=lambda x: x[1])
        out.append((
            "walcastd CPU <= %.1f µs/change with the Kafka sink "
            "(walcast-kafka; user CPU, librdkafka's threads included; "
            "user+sys in brackets)" % TARGET_US_KAFKA,
            "worst %.2f µs (%s); %s" % (worst[1], worst[0], ", ".join(
                "%s %.2f (%.2f)" % u for u in us)),
            worst[1] <= TARGET_US_KAFKA))
    big = wls.get("big")
    if big:
        rows = big["rows"]
        for cons in ("walcast-null", "walcast-jsonl", "walcast-file",
                     "walcast-kafka"):
            s = sums["big"].get(cons)
            if not s:
                continue
            full = rows >= FULL_ROWS
            out.append((
                "peak RSS <= %d MB during the 1,000,000-row transaction (%s)"
                % (TARGET_RSS_MB, cons),
                "%.1f MB with %s rows%s" % (
                    s["rss_mb"], _fmt_int(rows),
                    "" if full else " (not the 1,000,000 of the target: "
                    "run with --full)"),
                (s["rss_mb"] <= TARGET_RSS_MB) if full else None))
    base = res["summaries"].get("baseline", {})
    for cons, s in base.items():
        if s and cons.startswith("walcast") and s["cpu"] > 0.5 * s["wall"]:
            out.append((
                "no busy loop: a run of a few changes is mostly waiting "
                "(%s)" % cons,
                "CPU %.3f s in %.3f s of wall time" % (s["cpu"], s["wall"]),
                False))
    lat = res.get("latency")
    if lat:
        key = "acked" if "acked" in lat else "written"
        if key in lat:
            p99 = lat[key]["p99"]
            out.append((
                "p99 commit-to-acknowledge <= %.0f ms at %s changes/s "
                "(file sink, fsync)" % (TARGET_P99_MS,
                                        _fmt_int(lat["offered_rate"])),
                "p99 %.1f ms (%s); pg_recvlogical, commit to line "
                "written: p99 %s ms" % (
                    p99, "commit to the sink's fdatasync returning"
                    if key == "acked" else "commit to the line appearing in "
                    "the file; no strace, so no fsync time",
                    "%.1f" % lat["recv"]["written"]["p99"]
                    if lat.get("recv", {}).get("written") else "-"),
                p99 <= TARGET_P99_MS))
    return out


def render(res, consumers, labels):
    L = []
    m = res["machine"]
    L.append("walcast benchmark")
    L.append("")
    L.append("machine: %s, %d cores (%d online), %.1f GB RAM, Linux %s"
             % (m["cpu"], m["cores"], m["online"], m["mem_gb"], m["kernel"]))
    L.append("load average at start %s, at end %s (shared machine: wall "
             "times are medians of %d runs)"
             % (m["load_start"], m.get("load_end", "?"), res["reps"]))
    v = res["versions"]
    L.append("PostgreSQL %s, wal2json %s, %s (%s build%s)"
             % (v["postgresql"], v["wal2json"], v["walcastd"], v["build_type"],
                ", SANITIZERS ON: figures meaningless" if v.get("sanitize")
                else ""))
    L.append("wal2json options: %s" % " ".join(
        "%s=%s" % kv for kv in res["w2j_options"]))
    L.append("command: %s" % res["command"])
    L.append("")
    for wl in res["workloads"]:
        L.append("### %s: %s" % (wl["name"], wl["description"]))
        L.append("")
        L.append("%s changes in %s transactions, %.1f MB of wal2json JSON; "
                 "workload ran in %.1f s"
                 % (_fmt_int(wl["changes"]), _fmt_int(wl["txns"]),
                    wl["json_bytes"] / 1e6, wl["gen_seconds"]))
        L.append("")
        L.append(wl["table"])
        L.append("")
    lat = res.get("latency")
    if lat:
        L.append("### latency: %s changes/s offered in %d-change transactions"
                 " for %g s" % (_fmt_int(lat["offered_rate"]), lat["per_txn"],
                                lat["seconds"]))
        L.append("")
        L.append("walcastd (file sink, fsync on): %s changes, achieved %s "
                 "changes/s; pg_recvlogical > file (reference, same "
                 "workload, run just before): %s changes; measured with %s"
                 % (_fmt_int(lat["changes"]), _fmt_int(lat["achieved_rate"]),
                    _fmt_int(lat["recv"]["changes"]), lat["method"]))
        L.append("")
        rows = []

        def row(label, d, fmt="%.1f"):
            rows.append([label] + [fmt % d[k] for k in
                                   ("p50", "p90", "p99", "p999", "max")])
        if lat["recv"].get("written"):
            row("pg_recvlogical: commit -> line written",
                lat["recv"]["written"])
        if lat.get("written"):
            row("walcastd: commit -> line written", lat["written"])
        if lat.get("acked"):
            row("walcastd: commit -> fdatasync returned = ack",
                lat["acked"])
        if lat.get("fdatasync"):
            row("walcastd: fdatasync duration (%d calls)"
                % lat["fdatasync"]["n"], lat["fdatasync"], "%.2f")
        if lat.get("kafka", {}).get("consumed"):
            row("walcastd -> Kafka: commit -> consumed by kcat (%s msgs)"
                % _fmt_int(lat["kafka"]["consumed"]["n"]),
                lat["kafka"]["consumed"])
        if lat.get("kafka_eos", {}).get("consumed"):
            row("walcastd -> Kafka exactly once: commit -> consumed by kcat "
                "read_committed (%s msgs)"
                % _fmt_int(lat["kafka_eos"]["consumed"]["n"]),
                lat["kafka_eos"]["consumed"])
        L.append(table(["ms", "p50", "p90", "p99", "p99.9", "max"], rows))
        L.append("")
    cg = res.get("callgrind")
    if cg:
        L.append("### callgrind: %s changes (%s), instructions per change"
                 % (_fmt_int(cg["changes"]), cg["workload"]))
        L.append("")
        rows = []
        for who in ("walcastd", "pg_recvlogical"):
            if who in cg:
                rows.append([who, _fmt_int(cg[who]["total_ir"]),
                             _fmt_int(cg[who]["ir_per_change"])])
        L.append(table(["process (whole run)", "instructions",
                        "per change"], rows))
        L.append("")
        if "stages" in cg.get("walcastd", {}):
            rows = [[label, fn, _fmt_int(ir / cg["changes"])
                     if ir is not None else "-"]
                    for label, fn, ir in cg["walcastd"]["stages"]]
            L.append(table(["walcastd stage", "function (inclusive)",
                            "instructions/change"], rows, ["l", "l", "r"]))
            L.append("")
        if "walcastd" in cg:
            total = cg["walcastd"]["total_ir"]
            rows = [[fn, _fmt_int(ir / cg["changes"]),
                     "%.1f" % (100.0 * ir / total)]
                    for ir, fn in cg["walcastd"]["top"][:15]]
            L.append(table(["walcastd top functions (self)",
                            "instructions/change", "%"], rows))
            L.append("")
    ck = res.get("callgrind_kafka")
    if ck:
        L.append("### callgrind: walcastd with the Kafka sink, %s changes "
                 "(%s messages), instructions per change"
                 % (_fmt_int(ck["changes"]), _fmt_int(ck["messages"])))
        L.append("")
        L.append(table(["part", "instructions/change"],
                       [[label, _fmt_int(v)] for label, v in ck["parts"]]
                       + [["whole process", _fmt_int(ck["ir_per_change"])]]))
        L.append("")
    by_wl = [wl for wl in res["workloads"] if wl.get("callgrind")]
    if by_wl:
        L.append("### callgrind by workload: walcastd, file sink /dev/null, "
                 "instructions per change")
        L.append("")
        stages = ["wc_stream_read", "wc_decoder_decode", "wc_filter_match",
                  "wc_bus_dispatch"]
        rows = []
        for wl in by_wl:
            e = wl["callgrind"]
            incl = {fn: ir for _, fn, ir in e.get("stages", [])}
            top = e["top"][0] if e["top"] else (0, "-")
            rows.append([wl["name"], _fmt_int(e["changes"]),
                         _fmt_int(e["ir_per_change"])]
                        + [_fmt_int(incl[fn] / e["changes"])
                           if incl.get(fn) is not None else "-"
                           for fn in stages]
                        + ["%s (%s)" % (top[1],
                                        _fmt_int(top[0] / e["changes"]))])
        L.append(table(["workload", "changes", "whole process",
                        "receive", "decode", "route", "dispatch + sink",
                        "top function (self)"], rows,
                       ["l", "r", "r", "r", "r", "r", "r", "l"]))
        L.append("")
    L.append("### targets (issue 7)")
    L.append("")
    rows = []
    for target, measured, met in res["verdicts"]:
        rows.append([target, measured, "met" if met else
                     ("not measured" if met is None else "NOT MET")])
    L.append(table(["target", "measured", "verdict"], rows,
                   ["l", "l", "l"]))
    return "\n".join(L) + "\n"
