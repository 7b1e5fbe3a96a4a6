#!/usr/bin/python3
"""bench/report.py RAW.jsonl - turn one `make bench` run (the JSON lines of
bench/scenarios.py) into bench/RESULTS.md and one SVG per scenario in
bench/plots/. Standard library only.

Every number in RESULTS.md is computed from RAW: medians and min-max over the
rounds, never typed in, so the file cannot drift from the run it describes.

A partial run (SCENARIOS without all of a-f, e.g. `make bench SCENARIOS=h`)
does not throw the other sections away: when RESULTS.md exists, only the
sections of the scenarios in RAW are replaced (or inserted), each with a line
saying when, where and how it was measured, and so are their lines under
"Reading"; the rest of the file stays as the earlier run wrote it.
"""
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import plot  # noqa: E402

BROKERS = ["mosquitto", "nats", "mote"]
TITLES = {
    "a": "a) 10 -> 10 publishers/subscribers, 1:1 topics, QoS 0, 100 B, max rate",
    "b": "b) 10 -> 10 publishers/subscribers, 1:1 topics, QoS 1, 100 B, max rate",
    "c": "c) fan-out: 1 publisher -> 1,000 subscribers on one topic, QoS 0, 100 B",
    "d": "d) fan-in: 1,000 publishers -> 1 wildcard subscriber, QoS 0, 100 B, max rate",
    "e": "e) latency at fixed offered load (10 publishers -> 10 subscribers, 100 B)",
    "f": "f) idle connections: connect rate and broker memory per connection",
    "g": "g) mutual TLS: full handshakes per second, and QoS 0 throughput over TLS",
    "h": "h) persistent QoS 1: 128 publishers -> 128 persistent-session subscribers, 1:1, 100 B, max rate",
    "i": "i) telemetry ingest (issue 6): SenML packs over MQTT to durable storage, then a one-day query",
}
H_BROKERS = ["mosquitto-persist", "mote-always", "mote-batch", "mote-none"]
H_SETTING = {
    "mosquitto-persist": "mosquitto, `persistence true`",
    "mote-always": "mote `--fsync always`",
    "mote-batch": "mote `--fsync batch`",
    "mote-none": "mote `--fsync none`",
}
SETTINGS_INTRO = ("Broker settings (all on 127.0.0.1, a free port, limits raised; no persistence "
                  "except in h, which lists its own):\n")


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout.decode().strip()
    except OSError:
        return "?"


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return (statistics.median(vals), min(vals), max(vals))


def num(v, unit=""):
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return "{:,.0f}{}".format(v, unit)
    return "{:.3g}{}".format(v, unit)


def cell(st, unit=""):
    if st is None:
        return "n/a"
    return "%s (%s–%s)" % (num(st[0], unit), num(st[1], unit), num(st[2], unit))


def ratio(a, b):
    if a is None or b is None or b[0] == 0:
        return "n/a"
    return "%.3g×" % (a[0] / b[0])


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    return recs


def pick(recs, sc, var, broker):
    return [r for r in recs if r["scenario"] == sc and r["variant"] == var and r["broker"] == broker]


def ok_results(rs):
    return [r["result"] for r in rs if "result" in r and "error" not in r["result"]
            and r["result"].get("received_per_s") is not None]


def loss(res, fan):
    exp = res["sent"] * fan
    if exp <= 0:
        return None
    return max(0.0, 100.0 * (exp - res["received"]) / exp)


def throughput_section(recs, sc, md, plots_dir, verdicts):
    variants = sorted({r["variant"] for r in recs if r["scenario"] == sc})
    md.append("## %s\n" % TITLES[sc])
    cmds = sorted({r["command"] for r in recs if r["scenario"] == sc and "command" in r})
    for c in cmds:
        md.append("`%s`\n" % c)
    metric = "delivered msgs/s" if sc == "c" else "received msgs/s"
    md.append("| variant | broker | %s median (min–max) | sent msgs/s median | loss %% median (max) | errors | mote/broker |" % metric)
    md.append("|---|---|---|---|---|---|---|")
    groups = []
    for var in variants:
        per = {}
        items = []
        rows = []
        for b in BROKERS:
            rs = pick(recs, sc, var, b)
            if not rs:
                continue
            res = ok_results(rs)
            fan = rs[0].get("fan", 1) if rs else 1
            st = stats([x["received_per_s"] for x in res])
            per[b] = st
            sent = stats([x["sent_per_s"] for x in res])
            ls = [loss(x, fan) for x in res]
            ls = [v for v in ls if v is not None]
            errs = sum(sum(x.get("errors", {}).values()) for x in res)
            bad = [r.get("skipped") or r.get("error") or r.get("result", {}).get("error")
                   for r in rs if not ("result" in r and "error" not in r["result"])]
            note = "; ".join(sorted({str(x) for x in bad if x}))[:120]
            rows.append((b, st, sent, ls, errs, note))
            items.append((b, st[0] if st else None, st[1] if st else None, st[2] if st else None))
        for b, st, sent, ls, errs, note in rows:
            md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                var, b, cell(st) + (" — " + note if note else ""), num(sent[0]) if sent else "n/a",
                "%.2f (%.2f)" % (statistics.median(ls), max(ls)) if ls else "n/a", errs,
                ratio(per.get("mote"), st) if not b.startswith("mote") else "—"))
        groups.append((var, items))
        for b in ("mosquitto", "nats"):
            if per.get("mote") and per.get(b):
                r = per["mote"][0] / per[b][0] if per[b][0] else 0
                verdicts.append("%s %s: mote %s %s (%.3g× its %s)" % (
                    sc, var, "beats" if r > 1.05 else ("matches" if r >= 0.95 else "LOSES to"),
                    b, r, metric))
    md.append("")
    name = "%s.svg" % sc
    plot.bars(os.path.join(plots_dir, name), TITLES[sc], metric, groups)
    md.append("![%s](plots/%s)\n" % (sc, name))


def latency_section(recs, md, plots_dir, verdicts):
    sc = "e"
    md.append("## %s\n" % TITLES[sc])
    for c in sorted({r["command"] for r in recs if r["scenario"] == sc and "command" in r}):
        md.append("`%s`\n" % c)
    md.append("Offered load is the total over 10 publishers (`--rate` is per publisher). "
              "Latency is publish-to-receive on one host, in microseconds.\n")
    md.append("| load | broker | p50 us median (min–max) | p99 us median (min–max) | received/s | loss % | mote p99 / broker p99 |")
    md.append("|---|---|---|---|---|---|---|")
    variants = sorted({r["variant"] for r in recs if r["scenario"] == sc},
                      key=lambda v: (int(v.split("k")[0]), v))
    groups = []
    for var in variants:
        per = {}
        rows = []
        for b in BROKERS:
            if not pick(recs, sc, var, b):
                continue
            res = ok_results(pick(recs, sc, var, b))
            p50 = stats([x["latency_us"]["p50"] for x in res if x["latency_us"]["count"]])
            p99 = stats([x["latency_us"]["p99"] for x in res if x["latency_us"]["count"]])
            rcv = stats([x["received_per_s"] for x in res])
            ls = [loss(x, 1) for x in res]
            ls = [v for v in ls if v is not None]
            per[b] = p99
            rows.append((b, p50, p99, rcv, ls))
        for b, p50, p99, rcv, ls in rows:
            md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                var, b, cell(p50), cell(p99), num(rcv[0]) if rcv else "n/a",
                "%.2f" % statistics.median(ls) if ls else "n/a",
                ratio(per.get("mote"), p99) if not b.startswith("mote") else "—"))
        groups.append((var + " p50", [(b, p50[0] if p50 else None, p50[1] if p50 else None,
                                       p50[2] if p50 else None) for b, p50, _, _, _ in rows]))
        groups.append((var + " p99", [(b, p99[0] if p99 else None, p99[1] if p99 else None,
                                       p99[2] if p99 else None) for b, _, p99, _, _ in rows]))
        for b in ("mosquitto", "nats"):
            if per.get("mote") and per.get(b) and per[b][0]:
                r = per["mote"][0] / per[b][0]
                verdicts.append("e %s: mote p99 is %.3g× %s's (%s)" % (
                    var, r, b, "better" if r < 0.95 else ("similar" if r <= 1.05 else "WORSE")))
    md.append("")
    plot.bars(os.path.join(plots_dir, "e.svg"), "e) latency p50/p99 per load (lower is better)",
              "microseconds", groups)
    md.append("![e](plots/e.svg)\n")


def conn_section(recs, md, plots_dir, verdicts):
    sc = "f"
    md.append("## %s\n" % TITLES[sc])
    cmds = sorted({c for r in recs if r["scenario"] == sc for c in r.get("commands", [])})
    for c in cmds:
        md.append("`%s`\n" % c)
    md.append("Memory per connection = (broker VmRSS while the most connections were open − "
              "VmRSS before) / connections open at that moment (counted from the broker's "
              "/proc/PID/fd). The broker and bench processes run with `ulimit -n 20000`. "
              "mote runs as shipped, its platform on: every new client id is also registered "
              "as a device at its first connection (a registry entry, a twin row in "
              "`mote.db`), and that is in mote's number; mosquitto and NATS keep no such "
              "record.\n")
    md.append("| broker | held / attempted (median) | connect rate /s median (min–max) | bytes per connection median (min–max) | failed connects | mote/broker memory |")
    md.append("|---|---|---|---|---|---|")
    rate_items, mem_items = [], []
    per = {}
    rows = []
    for b in BROKERS:
        rs = [r for r in pick(recs, sc, "idle", b) if "skipped" not in r and "error" not in r]
        skipped = [r["skipped"] for r in pick(recs, sc, "idle", b) if "skipped" in r]
        if skipped:
            md.append("| %s | skipped: %s | | | | |" % (b, skipped[0]))
            continue
        rate = stats([r["connect_rate"] for r in rs if r["connected"]])
        mem = stats([r["bytes_per_conn"] for r in rs if r.get("bytes_per_conn")])
        held = stats([r["held"] for r in rs])
        att = rs[0]["attempted"] if rs else 0
        failed = sum(p.get("errors", {}).get("connect_failed", 0) + p.get("errors", {}).get("connect_refused", 0)
                     for r in rs for p in r["processes"])
        per[b] = mem
        rows.append((b, held, att, rate, mem, failed))
        rate_items.append((b,) + (rate if rate else (None, None, None)))
        mem_items.append((b,) + (mem if mem else (None, None, None)))
    for b, held, att, rate, mem, failed in rows:
        if held and held[0] < att:
            verdicts.append("f: %s held only %s of %d idle connections (median); %d connects "
                            "failed over all rounds, so its connect rate and memory figure "
                            "cover fewer connections" % (b, num(held[0]), att, failed))
        md.append("| %s | %s / %d | %s | %s | %d | %s |" % (
            b, num(held[0]) if held else "n/a", att, cell(rate), cell(mem), failed,
            ratio(per.get("mote"), mem) if not b.startswith("mote") else "—"))
        if not b.startswith("mote") and per.get("mote") and mem and mem[0]:
            r = per["mote"][0] / mem[0]
            verdicts.append("f: mote uses %.3g× %s's memory per idle connection (%s)" % (
                r, b, "less" if r < 0.95 else ("similar" if r <= 1.05 else "MORE")))
    md.append("")
    plot.bars(os.path.join(plots_dir, "f-rate.svg"), "f) connect rate (higher is better)",
              "connections/s", [("connect rate", rate_items)])
    plot.bars(os.path.join(plots_dir, "f-mem.svg"), "f) broker memory per idle connection (lower is better)",
              "bytes", [("bytes/connection", mem_items)])
    md.append("![f rate](plots/f-rate.svg) ![f memory](plots/f-mem.svg)\n")


def machine():
    return "%s CPUs (`nproc`), %s, %s memory, kernel %s" % (
        sh("nproc"), sh("lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1") or "?",
        sh("free -h | awk '/^Mem:/{print $2}'"), platform.release())


def commit(recs=()):
    """The mote commit the run measured (recorded by scenarios.py), else HEAD."""
    seen = sorted({r["mote_commit"] for r in recs if r.get("mote_commit")})
    if seen:
        return ", ".join(seen)
    return sh("cd %s && git rev-parse --short HEAD" % os.path.dirname(HERE)) or "?"


def measured_at(recs):
    """When the run's last measurement started, in the machine's time zone."""
    last = max((r["time"] for r in recs if r.get("time")), default=None)
    if not last:
        return time.strftime("%Y-%m-%d %H:%M %Z")
    return "%s %s" % (last.replace("T", " ")[:16], time.strftime("%Z"))


def loss_window(b, rec):
    """What a configuration can lose of what it acknowledged, in words."""
    if b == "mote-always":
        return ("nothing acknowledged, on a process crash or a power loss: the PUBACK is "
                "sent only after fdatasync of the message's record")
    if b == "mote-batch":
        return ("process crash (SIGKILL): nothing acknowledged (the record is written before "
                "the PUBACK); power loss: up to the last %s ms (`--fsync-batch-ms`) of "
                "acknowledged messages" % rec.get("fsync_batch_ms", "?"))
    if b == "mote-none":
        exp = rec.get("dirty_expire_centisecs")
        wb = rec.get("dirty_writeback_centisecs")
        return ("process crash: nothing acknowledged (the record is written before the "
                "PUBACK); power loss: what the OS had not yet written back, typically up to "
                "~%s s (vm.dirty_expire_centisecs=%s, write-back every %s s on this machine)"
                % ("%g" % (exp / 100.0) if exp else "30", exp if exp else "?",
                   "%g" % (wb / 100.0) if wb else "?"))
    if b == "mosquitto-persist":
        return ("process crash or power loss: everything since the last save, up to "
                "`autosave_interval` = %s s: mosquitto keeps messages in memory and writes "
                "its database only every autosave_interval and at a clean exit"
                % rec.get("autosave_interval", 1800))
    return "?"


def persist_section(recs, md, plots_dir, verdicts):
    sc = "h"
    hr = [r for r in recs if r["scenario"] == sc]
    m = next((re.search(r"--pubs (\d+)", r["command"]) for r in hr if "command" in r), None)
    if m:  # H_PUBS may differ from the default the title names
        TITLES[sc] = TITLES[sc].replace("128", m.group(1))
    md.append("## %s\n" % TITLES[sc])
    for c in sorted({r["command"] for r in hr if "command" in r}):
        md.append("`%s`\n" % c)
    first = next((r for r in hr if r.get("data_fs")), {})
    md.append("Every subscriber connects with a persistent session (`--session-expiry 3600`: "
              "MQTT 3.1.1 clean session 0), so each QoS 1 message is session state the broker "
              "must keep for it; mote persists it (journal) before the PUBACK to the publisher. "
              "Measured: messages received per second by the subscribers, end to end "
              "(publishing start to last message received). Broker data on a real disk: "
              "a fresh temporary directory under `PERSIST_DIR` (here %s, %s), not tmpfs, so "
              "fsync costs what it costs on this machine. Disk writes per message = "
              "`write_bytes` of the broker's /proc/PID/io over the bench run / messages "
              "received.\n" % (os.environ.get("PERSIST_DIR", "/var/tmp"), first.get("data_fs", "?")))
    # The mote commands differ only in --fsync: one line for the three.
    cmds = sorted({("mote-always, mote-batch, mote-none" if r["broker"].startswith("mote-")
                    else r["broker"],
                    re.sub(r"--fsync (always|batch|none)", "--fsync always|batch|none",
                           re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", r["broker_command"])))
                   for r in hr if r.get("broker_command")})
    for b, c in cmds:
        md.append("* %s: `%s`%s" % (b, c, (
            "; mosquitto.conf as in the settings above but `persistence true`, "
            "`persistence_location TMP/db/`, `autosave_interval %s` (mosquitto's default; "
            "the in-memory state is written every autosave_interval seconds and at a "
            "clean exit)" % first.get("autosave_interval", 1800))
            if b == "mosquitto-persist" else ""))
    md.append("")
    md.append("| broker | received msgs/s median (min–max) | sent msgs/s median | loss % median (max) "
              "| errors | × mosquitto-persist | disk writes per msg | acknowledged messages lost on |")
    md.append("|---|---|---|---|---|---|---|---|")
    per = {}
    items = []
    for b in H_BROKERS:
        rs = pick(recs, sc, "qos1-persist", b)
        if not rs:
            continue
        res = ok_results(rs)
        st = stats([x["received_per_s"] for x in res])
        per[b] = st
        sent = stats([x["sent_per_s"] for x in res])
        ls = [v for v in (loss(x, 1) for x in res) if v is not None]
        errs = sum(sum(x.get("errors", {}).values()) for x in res)
        disk = stats([r["broker_io"]["write_bytes"] / r["result"]["received"] for r in rs
                      if r.get("broker_io") and "result" in r and r["result"].get("received")])
        bad = [r.get("skipped") or r.get("error") or r.get("result", {}).get("error")
               for r in rs if not ("result" in r and "error" not in r["result"])]
        note = "; ".join(sorted({str(x) for x in bad if x}))[:120]
        rec0 = next((r for r in rs if "result" in r), rs[0])
        md.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            H_SETTING[b], cell(st) + (" — " + note if note else ""),
            num(sent[0]) if sent else "n/a",
            "%.2f (%.2f)" % (statistics.median(ls), max(ls)) if ls else "n/a", errs,
            ratio(st, per.get("mosquitto-persist")), num(disk[0], " B") if disk else "n/a",
            loss_window(b, rec0)))
        items.append((b, st[0] if st else None, st[1] if st else None, st[2] if st else None))
    md.append("")
    a, n, bt = per.get("mote-always"), per.get("mote-none"), per.get("mote-batch")
    if a and n and n[0]:
        r = a[0] / n[0]
        md.append("**always / none = %.3g×** (received msgs/s medians); the issue's target, "
                  "`--fsync always` within 2× of `--fsync none` with 100+ publishers "
                  "(≥ 0.5×), is **%s**. always / batch = %s.\n"
                  % (r, "met" if r >= 0.5 else "NOT met", ratio(a, bt)))
        verdicts.append("h: mote --fsync always reaches %.3g× the msgs/s of --fsync none "
                        "(target ≥ 0.5×: %s)" % (r, "met" if r >= 0.5 else "NOT MET"))
    mq = per.get("mosquitto-persist")
    for b in ("mote-always", "mote-batch", "mote-none"):
        if per.get(b) and mq and mq[0]:
            r = per[b][0] / mq[0]
            verdicts.append("h: mote --fsync %s %s mosquitto with persistence (%.3g× its "
                            "received msgs/s)" % (b.split("-")[1], "beats" if r > 1.05 else (
                                "matches" if r >= 0.95 else "LOSES to"), r))
    plot.bars(os.path.join(plots_dir, "h.svg"), "h) persistent QoS 1, %s publishers (received msgs/s)"
              % (m.group(1) if m else "?"),
              "received msgs/s", [("qos1-persist", items)])
    md.append("![h](plots/h.svg)\n")


G_BROKERS = ["mosquitto-tls", "mote-tls"]


def tls_section(recs, md, plots_dir, verdicts):
    sc = "g"
    md.append("## %s\n" % TITLES[sc])
    md.append("Both brokers require a client certificate from the same CA (made for the run with "
              "`mote pki init` + `issue bench`; every bench connection presents `bench.pem`), "
              "TLS 1.2+ with the client's default preference (TLS 1.3, ECDSA P-256 "
              "certificates). mosquitto: `listener PORT 127.0.0.1`, `cafile`, `certfile`, "
              "`keyfile`, `require_certificate true`, `user root` (to read the 0600 keys), plus the settings above. mote: `--mqtt off "
              "--mqtts 127.0.0.1:PORT --tls-ca --tls-cert --tls-key --identity-match off` (one "
              "certificate for every bench client id) plus the settings above. "
              "No session resumption on either side (the bench client never offers a ticket), "
              "so every connection is a full handshake with certificate verification on both "
              "ends. The bench client does its own half of every handshake on the same cores.\n")
    cmds = sorted({r.get("command") for r in recs if r["scenario"] == sc and r.get("command")})
    for c in cmds:
        md.append("`%s`\n" % c)
    loads = [r["loadavg_1m"] for r in recs if r["scenario"] == sc and "loadavg_1m" in r]
    if loads:
        md.append("Machine load (1-minute load average as each run started, 2 CPUs): "
                  "%.2f–%.2f.\n" % (min(loads), max(loads)))
    md.append("| broker | handshakes + CONNACK /s median (min–max) | failed | QoS 0 over TLS received msgs/s median (min–max) | p50 latency us |")
    md.append("|---|---|---|---|---|")
    hs, tp, items_hs, items_tp = {}, {}, [], []
    for b in G_BROKERS:
        hrs = [r["result"] for r in pick(recs, sc, "handshakes", b)
               if "result" in r and "error" not in r["result"]]
        rate = stats([x["connections"]["rate_per_s"] for x in hrs
                      if x.get("connections", {}).get("connected")])
        failed = sum(x.get("errors", {}).get("connect_failed", 0) +
                     x.get("errors", {}).get("connect_refused", 0) for x in hrs)
        trs = ok_results(pick(recs, sc, "qos0-tls", b))
        thr = stats([x["received_per_s"] for x in trs])
        p50 = stats([x.get("latency_us", {}).get("p50") for x in trs])
        hs[b], tp[b] = rate, thr
        items_hs.append((b,) + (rate if rate else (None, None, None)))
        items_tp.append((b,) + (thr if thr else (None, None, None)))
        md.append("| %s | %s | %d | %s | %s |" % (b, cell(rate), failed, cell(thr),
                                                  num(p50[0]) if p50 else "n/a"))
    md.append("")
    if hs.get("mote-tls") and hs.get("mosquitto-tls"):
        md.append("mote/mosquitto: handshakes %s, QoS 0 over TLS %s.\n" % (
            ratio(hs["mote-tls"], hs["mosquitto-tls"]), ratio(tp.get("mote-tls"), tp.get("mosquitto-tls"))))
        verdicts.append("g: mote completes %s mosquitto's mutual-TLS handshakes (+CONNACK) per second "
                        "(%s vs %s /s)" % (ratio(hs["mote-tls"], hs["mosquitto-tls"]),
                                           num(hs["mote-tls"][0]), num(hs["mosquitto-tls"][0])))
    if tp.get("mote-tls") and tp.get("mosquitto-tls"):
        verdicts.append("g: QoS 0 over TLS, mote delivers %s mosquitto's rate (%s vs %s msgs/s)" % (
            ratio(tp["mote-tls"], tp["mosquitto-tls"]), num(tp["mote-tls"][0]),
            num(tp["mosquitto-tls"][0])))
    plot.bars(os.path.join(plots_dir, "g-handshakes.svg"), "g) mutual-TLS handshakes + CONNACK per second "
              "(higher is better)", "connections/s", [("handshakes", items_hs)])
    plot.bars(os.path.join(plots_dir, "g-qos0.svg"), "g) QoS 0 over TLS (higher is better)",
              "received msgs/s", [("qos0-tls", items_tp)])
    md.append("![g handshakes](plots/g-handshakes.svg) ![g qos0](plots/g-qos0.svg)\n")


SECTION_RE = re.compile(r"(?m)^## ([a-z])\) ")
VERDICT_RE = re.compile(r"^\* ([a-z])[ :]")


def telemetry_section(recs, md, plots_dir, verdicts):
    rs = [r for r in recs if r["scenario"] == "i" and "skipped" not in r]
    md.append("## %s\n" % TITLES["i"])
    if not rs:
        return
    r0 = rs[0]
    md.append("%d publishers (one registered device each) send SenML packs of %d points (5 metrics, "
              "1 Hz device time, two-decimal values) to `dev/{i}/telemetry`, QoS 0. Variant **max**: "
              "as fast as they can (a flood: the load generator, the broker threads and the "
              "pipeline share 2 cores); variants **paced-N**: N points/s offered in total. "
              "**mote-telemetry**: the hub as shipped (default limits) with `--data` on a disk and "
              "`--http`; *stored* is the store's `mote_store_points_flushed_total` from `/metrics`, "
              "counted until every decoded point is on disk; *sustained* is the slope of that counter "
              "while publishing (without the first 2 s and the last 0.5 s), *overall* is all stored "
              "points divided by the time from the start until the last one was durable; what the "
              "pipeline could not take is "
              "dropped and counted (`mote_pipeline_dropped_total`, messages). **mosquitto** stores "
              "nothing: it routes the same messages to one wildcard subscriber (`dev/+/telemetry`); "
              "its rate is points received by that subscriber per second, the peer ratio only. "
              "The query is one day of metric m0 of device 0 at 1 Hz over HTTP (`GET "
              "/api/v1/devices/0/telemetry?metric=m0&from=..&to=..&limit=100000`, JSON), 5 times, "
              "the first cold; bytes/point is telemetry.db after the hub stopped (checkpointed) "
              "divided by the points stored.\n" % (
                  r0.get("pubs", 0), r0.get("pack", 0)))
    for c in sorted({r["command"] for r in rs if "command" in r}):
        md.append("`%s`\n" % c)
    for c in sorted({r["broker_command"] for r in rs if "broker_command" in r}):
        md.append("hub: `%s`\n" % c)
    md.append("| variant | broker | sustained points/s | overall points/s | points offered | decoded | "
              "stored | messages dropped | 1-day query ms | points returned | bytes/point on disk |")
    md.append("|---|---|---|---|---|---|---|---|---|---|---|")
    per = {}
    for var in sorted({r["variant"] for r in rs}, key=lambda v: (v != "max", len(v), v)):
        for b in sorted({r["broker"] for r in rs}):
            br = [r for r in rs if r["broker"] == b and r["variant"] == var]
            ok = [r for r in br if r.get("points_per_s")]
            if ok:
                per[(var, b)] = stats([r["points_per_s"] for r in ok])
            for r in br:
                if not r.get("points_per_s"):
                    md.append("| %s | %s | error: %s | | | | | | | | |" % (
                        var, b, str(r.get("error") or r.get("result", {}).get("error"))[:150]))
                elif b == "mote-telemetry":
                    md.append("| %s | %s (round %d) | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                        var, b, r["round"], num(r.get("sustained_points_per_s")),
                        num(r["points_per_s"]), num(r.get("points_sent")),
                        num(r.get("points_decoded")), num(r.get("points_flushed")),
                        num(r.get("messages_dropped")),
                        ", ".join("%.1f" % x for x in r.get("query_ms", [])) or "n/a",
                        r.get("query_points", "n/a"),
                        "%.2f" % r["bytes_per_point"] if r.get("bytes_per_point") else "n/a"))
                else:
                    md.append("| %s | %s (round %d) | %s routed | — | %s | — | stores nothing | — | — | — "
                              "| — |" % (var, b, r["round"], num(r["points_per_s"]),
                                         num(r.get("points_sent"))))
    md.append("")
    m, q = per.get(("max", "mote-telemetry")), per.get(("max", "mosquitto"))
    paced = [r for r in rs if r["broker"] == "mote-telemetry" and r["variant"].startswith("paced")
             and r.get("sustained_points_per_s")]
    for r in paced:
        # every offered point stored, the last one durable within 3 s (flush_ms is 1 s)
        ok = r.get("messages_dropped", 1) == 0 and r.get("points_flushed") == r.get("points_sent") \
            and r.get("durable_lag_s", 99) < 3.0
        verdicts.append("i telemetry paced at %s points/s: mote %s (sustained %s points/s durable, "
                        "%s messages dropped, last point durable %.1f s after the publishers stopped)" % (
                            num(r.get("offered_points_per_s")), "keeps up" if ok else "does NOT keep up",
                            num(r["sustained_points_per_s"]), num(r.get("messages_dropped")),
                            r.get("durable_lag_s", 0)))
    if m:
        qs = [x for r in rs if r["broker"] == "mote-telemetry" and (r.get("query_points") or 0) >= 86400
              for x in r.get("query_ms", [])[1:]]
        verdicts.append("i telemetry at max offered load: mote stores %s points/s durably "
                        "(overall)%s%s" % (
                            num(m[0]),
                            "; one-day query (86,400 points, JSON over HTTP) %.1f ms median warm (target 50 ms)" %
                            statistics.median(qs)
                            if qs else "",
                            "; %.3g× the points/s mosquitto merely routes" % (m[0] / q[0])
                            if q and q[0] else ""))


def splice(old, new_secs, letters, new_verdicts, notes):
    """old RESULTS.md with the sections of `letters` replaced by new_secs
    (letter -> text), their Reading lines by new_verdicts, and the method
    notes by the current NOTES.md."""
    cut = old.find("## How to read these numbers")
    body = old[:cut] if cut >= 0 else old
    parts = re.split(r"(?m)^(?=## )", body)
    head, secs, reading, other = parts[0], [], "", []
    for p in parts[1:]:
        m = SECTION_RE.match(p)
        if m:
            secs.append((m.group(1), p))
        elif p.startswith("## Reading"):
            reading = p
        else:
            other.append(p)
    secs = [(k, t) for k, t in secs if k not in letters] + sorted(new_secs.items())
    secs.sort(key=lambda kt: kt[0])
    head = re.sub(r"(?m)^Broker settings \(.*\n", lambda m: SETTINGS_INTRO, head, count=1)
    rlines = reading.rstrip("\n").split("\n") if reading else ["## Reading (computed from the medians above)", ""]
    title, bullets = rlines[:2], [l for l in rlines[2:] if l.strip()]
    bullets = [l for l in bullets if not (VERDICT_RE.match(l) and VERDICT_RE.match(l).group(1) in letters)]
    bullets += ["* %s" % v for v in new_verdicts]
    bullets.sort(key=lambda l: VERDICT_RE.match(l).group(1) if VERDICT_RE.match(l) else "~")
    out = head + "".join(t for _, t in secs) + "".join(other)
    out += "\n".join(title + bullets) + "\n\n"
    return out + notes + "\n"


def main():
    raw = sys.argv[1]
    out_md = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "RESULTS.md")
    plots_dir = os.path.join(os.path.dirname(out_md), "plots")
    os.makedirs(plots_dir, exist_ok=True)
    recs = load(raw)
    for extra in ("mote-1t", "mote-default"):
        if any(r["broker"] == extra for r in recs):
            BROKERS.append(extra)
    rounds = max([r["round"] for r in recs] + [0])
    env = dict(os.environ)
    md = ["# mote bench results: mosquitto vs NATS vs mote\n",
          "Generated by `make bench` (bench/run.sh -> bench/scenarios.py -> bench/report.py); "
          "do not edit by hand: rerun it.\n",
          "* date: %s" % measured_at(recs),
          "* machine: %s" % machine(),
          "* brokers: %s; %s; mote %s (Release build, build-release/mote)" % (
              sh("/usr/sbin/mosquitto -h 2>/dev/null | head -1"), sh("/usr/sbin/nats-server --version"),
              commit(recs)),
          "* rounds: %d per scenario and broker, broker order rotated every round, a fresh "
          "broker process per run; values are median (min–max) over the rounds" % rounds,
          "* raw results: `%s` (JSON lines, one per run; `mote bench --json` output under `result`)"
          % os.path.relpath(raw, os.path.dirname(HERE)),
          "* run with: `make bench` (knobs: %s)\n" % ", ".join(
              "%s=%s" % (k, env.get(k, d)) for k, d in (("REPEAT", "3"), ("DURATION", "10"),
                                                         ("LAT_DURATION", "5"), ("CONN_TOTAL", "19000"),
                                                         ("CONN_HOLD", "5"), ("CONN_RATE", "1000"),
                                                         ("H_PUBS", "128"), ("PERSIST_DIR", "/var/tmp"),
                                                         ("FSYNC_BATCH_MS", "10"))),
          SETTINGS_INTRO,
          "* mosquitto: `listener PORT 127.0.0.1`, `allow_anonymous true`, `set_tcp_nodelay true`, "
          "`persistence false`, `max_inflight_messages 0` (no maximum), `max_queued_messages 1000000`, "
          "`max_queued_bytes 0` (no maximum)",
          "* NATS: `server_name`, `jetstream { store_dir }` (on /dev/shm, tmpfs), "
          "`mqtt { host: 127.0.0.1, port: PORT, max_ack_pending: 65535 }`; NATS MQTT has QoS 0/1 only",
          "* mote: `mote hub --mqtt 127.0.0.1:PORT --allow-anonymous --data TMP --sys-interval 0 "
          "--log-level warn --max-queued 1000000 --max-inflight 65535 --receive-max 65535 "
          "--max-client-outbuf 67108864`; `mote-default` rows (if any) are the same hub "
          "with its default limits (`--max-inflight 64 --receive-max 64 --max-queued 1000`, 4 MB outbuf); "
          "`mote` runs one event loop per CPU (the default), `mote-1t` rows (if any) are the same hub with `--threads 1`\n",
          "`PORT` in the commands below is the broker's port. Loss = (sent × subscribers reached − "
          "received) / (sent × subscribers reached), after the drain phase.\n"]
    verdicts = []
    present = {r["scenario"] for r in recs}
    secs = {}
    for sc in sorted(present):
        sec = []
        if sc in ("a", "b", "c", "d"):
            throughput_section(recs, sc, sec, plots_dir, verdicts)
        elif sc == "e":
            latency_section(recs, sec, plots_dir, verdicts)
        elif sc == "f":
            conn_section(recs, sec, plots_dir, verdicts)
        elif sc == "g":
            tls_section(recs, sec, plots_dir, verdicts)
        elif sc == "h":
            persist_section(recs, sec, plots_dir, verdicts)
        elif sc == "i":
            telemetry_section(recs, sec, plots_dir, verdicts)
        else:
            continue
        secs[sc] = sec
    notes_path = os.path.join(HERE, "NOTES.md")
    notes = ""
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            notes = f.read()
    if not set("abcdef") <= present and os.path.exists(out_md):
        knobs = " ".join("%s=%s" % (k, env[k]) for k in
                          ("SCENARIOS", "REPEAT", "DURATION", "LAT_DURATION", "H_PUBS",
                           "PERSIST_DIR", "FSYNC_BATCH_MS") if k in env)
        prov = ("*This section comes from a separate, later run than the header describes: %s, machine %s, "
                "mote %s (Release build), %d round(s), broker order rotated every round, "
                "values median (min–max); raw `%s`; run with `make bench %s`.*\n" % (
                    measured_at(recs), machine(), commit(recs), rounds,
                    os.path.relpath(raw, os.path.dirname(HERE)), knobs))
        new = {}
        for sc, sec in secs.items():
            new[sc] = "\n".join(sec[:1] + [prov] + sec[1:]) + "\n"
        with open(out_md) as f:
            old = f.read()
        with open(out_md, "w") as f:
            f.write(splice(old, new, set(secs), verdicts, notes))
        print("updated sections %s of %s, plots in %s/" % (",".join(sorted(secs)), out_md, plots_dir))
        return
    for sc in "abcdef":
        md.extend(secs.get(sc, []))
    md.extend(secs.get("g", []))
    md.extend(secs.get("h", []))
    md.extend(secs.get("i", []))
    md.append("## Reading (computed from the medians above)\n")
    md.extend("* %s" % v for v in verdicts)
    md.append("")
    if notes:
        md.append(notes)
    with open(out_md, "w") as f:
        f.write("\n".join(md) + "\n")
    print("wrote %s and %s/" % (out_md, plots_dir))


if __name__ == "__main__":
    main()
