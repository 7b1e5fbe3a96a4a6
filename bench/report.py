#!/usr/bin/python3
"""bench/report.py RAW.jsonl - turn one `make bench` run (the JSON lines of
bench/scenarios.py) into bench/RESULTS.md and one SVG per scenario in
bench/plots/. Standard library only.

Every number in RESULTS.md is computed from RAW: medians and min-max over the
rounds, never typed in, so the file cannot drift from the run it describes.
"""
import json
import os
import platform
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
}


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
              "/proc/PID/fd). The broker and bench processes run with `ulimit -n 20000`.\n")
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
          "* date: %s" % time.strftime("%Y-%m-%d %H:%M %Z"),
          "* machine: %s CPUs (`nproc`), %s, %s memory, kernel %s" % (
              sh("nproc"), sh("lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1") or "?",
              sh("free -h | awk '/^Mem:/{print $2}'"), platform.release()),
          "* brokers: %s; %s; mote %s (Release build, build-release/mote)" % (
              sh("/usr/sbin/mosquitto -h 2>/dev/null | head -1"), sh("/usr/sbin/nats-server --version"),
              sh("cd %s && git rev-parse --short HEAD" % os.path.dirname(HERE)) or "?"),
          "* rounds: %d per scenario and broker, broker order rotated every round, a fresh "
          "broker process per run; values are median (min–max) over the rounds" % rounds,
          "* raw results: `%s` (JSON lines, one per run; `mote bench --json` output under `result`)"
          % os.path.relpath(raw, os.path.dirname(HERE)),
          "* run with: `make bench` (knobs: %s)\n" % ", ".join(
              "%s=%s" % (k, env.get(k, d)) for k, d in (("REPEAT", "3"), ("DURATION", "10"),
                                                         ("LAT_DURATION", "5"), ("CONN_TOTAL", "19000"),
                                                         ("CONN_HOLD", "5"), ("CONN_RATE", "1000"))),
          "Broker settings (all on 127.0.0.1, a free port, no persistence, limits raised):\n",
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
    for sc in ("a", "b", "c", "d"):
        if sc in present:
            throughput_section(recs, sc, md, plots_dir, verdicts)
    if "e" in present:
        latency_section(recs, md, plots_dir, verdicts)
    if "f" in present:
        conn_section(recs, md, plots_dir, verdicts)
    md.append("## g) TLS handshakes per second\n")
    md.append("| broker | handshakes/s |\n|---|---|")
    md.append("| all | pending: TLS arrives with the security work |\n")
    md.append("## Reading (computed from the medians above)\n")
    md.extend("* %s" % v for v in verdicts)
    md.append("")
    notes = os.path.join(HERE, "NOTES.md")
    if os.path.exists(notes):
        with open(notes) as f:
            md.append(f.read())
    with open(out_md, "w") as f:
        f.write("\n".join(md) + "\n")
    print("wrote %s and %s/" % (out_md, plots_dir))


if __name__ == "__main__":
    main()
