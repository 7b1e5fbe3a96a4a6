#!/usr/bin/env python3
"""bench/nab.py - scenario j: NAB anomaly detection (issue 8).

Runs `mote analyze nab` (env MOTE: the release binary) over the NAB corpus in
../shared/data/nab, scores the output with ../shared/tools/nab_score.py (the
official NAB v1.1 rules, all three profiles) and measures the detector's speed:
points per second on one thread, detector only (CSV parsing and output not
timed, in the thread's CPU time so that other processes on a shared machine
do not count), the median of ROUNDS runs of `--repeat REPEAT`. Rewrites the
`## j) ...` section of RESULTS.md (argv[1]), inserted before `## Reading`.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import sections  # bench/sections.py: machine, commit, the RESULTS.md section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.environ.get("MOTE_SHARED_DIR", os.path.join(ROOT, "..", "shared")))
DATA = os.path.join(SHARED, "data", "nab", "data")
LABELS = os.path.join(SHARED, "data", "nab", "labels", "combined_windows.json")
SCORER = os.path.join(SHARED, "tools", "nab_score.py")
ROUNDS = int(os.environ.get("NAB_ROUNDS", "5"))
REPEAT = int(os.environ.get("NAB_REPEAT", "20"))
TITLE = "## j) NAB anomaly detection (issue 8): mote analyze nab, NAB v1.1 scores and detector speed"


def section(body):
    return TITLE + "\n\n" + body.rstrip() + "\n\n"


def main():
    results_md = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", "RESULTS.md")
    mote = os.environ.get("MOTE") or os.path.join(ROOT, "build-release", "mote")
    if not (os.path.isdir(DATA) and os.path.isfile(LABELS) and os.path.isfile(SCORER)):
        print("bench j: NAB corpus or scorer not found under %s: scenario j skipped" % SHARED, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "results")
        rates = []
        wall = None
        for r in range(ROUNDS):
            t0 = time.monotonic()
            res = subprocess.run([mote, "analyze", "nab", "--data", DATA, "--out", out, "--quiet",
                                  "--repeat", str(1 if r == 0 else REPEAT)],
                                 capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                print(res.stdout + res.stderr, file=sys.stderr)
                return 1
            if r == 0:
                wall = time.monotonic() - t0  # the whole command once: read, detect, write
                summary = res.stdout.strip().splitlines()[-1]
                continue
            m = re.search(r"(\d+) points; detector (\d+) points/s", res.stdout)
            points = int(m.group(1))
            rates.append(int(m.group(2)))
        sc = subprocess.run([sys.executable, SCORER, "--data", DATA, "--labels", LABELS, "--results", out,
                             "--json"], capture_output=True, text=True, check=True, timeout=600)
        scores = json.loads(sc.stdout)
    rate = statistics.median(rates)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = ["| profile | NAB score (0 = null detector, 100 = perfect) | raw | threshold (swept) |",
            "|---|---|---|---|"]
    for prof in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        r = scores[prof]
        rows.append("| %s | **%.2f** | %.4f | %.6f |" % (prof, r["score"], r["raw"], r["threshold"]))
    body = "\n".join([
        "* date: %s; machine: %s; mote %s (`%s`)" % (date, sections.machine(), sections.commit(), os.path.relpath(mote, ROOT)),
        "* data: the %d-window, 31-file part of the NAB v1.1 corpus in `../shared/data/nab` (%d points); one "
        "detector per file with the global settings of `mote_anomaly_params_default` (src/analytics/anomaly.c), "
        "nothing chosen per file; the scorer sweeps one threshold over all files, as NAB does"
        % (scores["standard"]["windows"], points),
        "* run with: `make bench` (or `MOTE=build-release/mote python3 bench/nab.py bench/RESULTS.md`); "
        "by hand: `mote analyze nab --data ../shared/data/nab/data --out OUT && python3 "
        "../shared/tools/nab_score.py --data ../shared/data/nab/data --labels "
        "../shared/data/nab/labels/combined_windows.json --results OUT`",
        "",
        "\n".join(rows),
        "",
        "Speed: **%s points/s** on one core, detector only (`mote_anomaly_step` timed around the per-file "
        "loop in the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), CSV parsing and output excluded), median of %d runs of `--repeat %d` over all %d points "
        "(runs: %s); the whole command once (read, parse, detect, write %d files): %.2f s. Last summary line: `%s`."
        % (format(int(rate), ","), len(rates), REPEAT, points, ", ".join(format(x, ",") for x in rates),
           31, wall, summary),
        "",
        "Reference (published NAB v1.1 scoreboard, full 58-file corpus): Numenta HTM 70.5 / 62.6 / 75.2, "
        "ARTime 74.9, CAD OSE 69.9; the target of issue 8 is standard >= 70 on these files.",
    ])
    sections.replace_section(results_md, "j", section(body))
    print("bench j: standard %.2f, reward_low_FP_rate %.2f, reward_low_FN_rate %.2f, %s points/s"
          % (scores["standard"]["score"], scores["reward_low_FP_rate"]["score"],
             scores["reward_low_FN_rate"]["score"], format(int(rate), ",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
