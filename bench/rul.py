#!/usr/bin/python3
"""bench/rul.py - scenario k: remaining useful life on NASA C-MAPSS.

Runs `mote analyze rul` (the binary in $MOTE) on FD001 with the truth: RMSE
and PHM08 score of the 100 test engines' estimates, training time, and
estimates per second (median of three runs of a saved model over the test
set, batch of 100). Then 5-fold cross-validation by engine on the training
set (the number the settings were chosen by), and FD003 (truth withheld:
only the spread of the estimates). Rewrites the `## k) ...` section of
RESULTS.md (argv[1]), placed before `## Reading`.

Data: ../shared/data/cmapss next to the repository, or $MOTE_CMAPSS_DIR.
"""
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile

import sections  # bench/sections.py: machine, commit, the RESULTS.md section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("MOTE_CMAPSS_DIR", os.path.join(ROOT, "..", "shared", "data", "cmapss"))
MOTE = os.environ.get("MOTE", os.path.join(ROOT, "build-release", "mote"))
THREADS = os.environ.get("RUL_THREADS", "1")


def d(name):
    return os.path.join(DATA, name)


def run(*args):
    argv = [MOTE, "analyze", "rul", "--threads", THREADS] + list(args)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=1800)
    if r.returncode != 0:
        sys.exit("bench/rul.py: %s failed: %s" % (" ".join(argv), r.stderr))
    return r.stdout


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/rul.py RESULTS.md")
    results = sys.argv[1]
    if not os.path.isfile(d("train_FD001.txt")):
        print("bench/rul.py: no C-MAPSS data in %s; scenario k skipped" % DATA, file=sys.stderr)
        return
    load = os.getloadavg()[0]
    tmp = tempfile.mkdtemp(prefix="mote-bench-rul-")
    model = os.path.join(tmp, "fd001.rul")
    pred = os.path.join(tmp, "fd001.txt")
    out = run("--train", d("train_FD001.txt"), "--test", d("test_FD001.txt"), "--truth", d("RUL_FD001.txt"),
              "--predictions", pred, "--save-model", model)
    m = re.search(r"^RMSE ([0-9.]+) PHM08 ([0-9.]+)", out, re.M)
    t = re.search(r"^rul: trained on .*?: (.*), ([0-9.]+) s$", out, re.M)
    rates = []
    for _ in range(3):
        o = run("--model", model, "--test", d("test_FD001.txt"))
        rates.append(float(re.search(r"\(([0-9]+) estimates/s\)", o).group(1)))
    cv = run("--train", d("train_FD001.txt"), "--cv", "5")
    c = re.search(r"RMSE ([0-9.]+), mean PHM08 ([0-9.]+) per estimate \(([0-9]+) estimates.*?"
                  r"interval coverage ([0-9.]+)%", cv)
    spread = ""
    if os.path.isfile(d("train_FD003.txt")):
        p3 = os.path.join(tmp, "fd003.txt")
        run("--train", d("train_FD003.txt"), "--test", d("test_FD003.txt"), "--predictions", p3)
        with open(p3) as f:
            v = [float(x) for x in f.read().split()]
        spread = ("| FD003 (2 fault modes; truth withheld) | %d estimates: min %.1f, median %.1f, max %.1f "
                  "| no truth: not scored |\n" % (len(v), min(v), statistics.median(v), max(v)))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = ("mote analyze rul --threads %s --train train_FD001.txt --test test_FD001.txt --truth RUL_FD001.txt"
           % THREADS)
    section = (
        "## k) remaining useful life: NASA C-MAPSS FD001 (issue 8)\n\n"
        "Written by `bench/rul.py` (scenario k of `make bench`). Date %s; machine %s, load average %.2f at start; "
        "mote %s (binary `%s`); data `%s`.\n\n"
        "Command: `%s` (files in the data folder; `bench/rul.py bench/RESULTS.md` reruns this section).\n\n"
        "| what | result | reference |\n|---|---|---|\n"
        "| FD001 test RMSE (100 engines, last cycle, truth capped at 125) | **%s** | target <= 13; published CNN "
        "18.45, LSTM 16.14, DCNN 12.61 |\n"
        "| FD001 PHM08 score (sum over 100 engines) | **%s** | lower is better |\n"
        "| 5-fold CV by engine on train_FD001, every cycle (settings were chosen by this) | RMSE %s, mean PHM08 %s "
        "per estimate (%s estimates); interval coverage %s %% | interval nominal 80 %% |\n"
        "| training (%s) | %s s, %s XGBoost thread | |\n"
        "| estimates/s (saved model, batch of 100 test engines, features + every booster) | %s (median of 3) | |\n"
        "%s\n"
        % (now, sections.machine(), load, sections.commit(), os.path.relpath(MOTE, ROOT), os.path.relpath(DATA, ROOT), cmd,
           m.group(1), m.group(2), c.group(1), c.group(2), c.group(3), c.group(4), t.group(1), t.group(2), THREADS,
           "{:,.0f}".format(statistics.median(rates)), spread))
    sections.replace_section(results, "k", section)
    print("bench/rul.py: FD001 RMSE %s PHM08 %s, CV RMSE %s -> %s" % (m.group(1), m.group(2), c.group(1), results))


if __name__ == "__main__":
    main()
