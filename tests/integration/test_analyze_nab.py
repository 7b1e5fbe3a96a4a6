"""test_analyze_nab.py - `mote analyze nab` on the NAB corpus, scored by the official rules.

Runs the real binary ($MOTE_BIN, which may be an ASan or TSan build) over
../shared/data/nab (31 NAB v1.1 files), then ../shared/tools/nab_score.py over
its output, and asserts the NAB standard-profile score reaches what the
detector reached when it was tuned (docs/analytics.md). Also: the output
layout the scorer needs, and bad files reported as FILE:LINE with exit 1.

The corpus lives outside the repository. When it is missing the test says so
on stderr and is reported as skipped, never passed.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ.get("MOTE_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHARED = os.path.normpath(os.environ.get("MOTE_SHARED_DIR", os.path.join(SRC, "..", "shared")))
DATA = os.path.join(SHARED, "data", "nab", "data")
LABELS = os.path.join(SHARED, "data", "nab", "labels", "combined_windows.json")
SCORER = os.path.join(SHARED, "tools", "nab_score.py")

# What the committed settings score on the 31 files (docs/analytics.md). The
# detector is deterministic, so the margin is small: a regression fails it.
STANDARD_MIN = 72.5  # reached: 72.93
LOW_FP_MIN = 67.8    # reached: 68.21
LOW_FN_MIN = 76.3    # reached: 76.69


def mote():
    return os.environ.get("MOTE_BIN") or os.path.join(SRC, "build", "mote")


def run(*args, timeout=120):
    return subprocess.run([mote(), "analyze", "nab"] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def have_corpus():
    return os.path.isdir(DATA) and os.path.isfile(LABELS) and os.path.isfile(SCORER)


class Corpus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not have_corpus():
            sys.stderr.write("SKIP test_analyze_nab: NAB corpus or scorer not found under %s "
                             "(set MOTE_SHARED_DIR); the score is NOT checked\n" % SHARED)
            raise unittest.SkipTest("NAB corpus not found under %s" % SHARED)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = os.path.join(cls.tmp.name, "results")
        t0 = time.monotonic()
        cls.res = run("--data", DATA, "--out", cls.out, "--quiet")
        cls.elapsed = time.monotonic() - t0

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_scores_reach_target(self):
        self.assertEqual(self.res.returncode, 0, self.res.stderr)
        sys.stderr.write("mote analyze nab: %.1f s; %s" % (self.elapsed, self.res.stdout))
        sc = subprocess.run([sys.executable, SCORER, "--data", DATA, "--labels", LABELS,
                             "--results", self.out, "--json"], capture_output=True, text=True, timeout=240)
        self.assertEqual(sc.returncode, 0, sc.stderr)
        r = json.loads(sc.stdout)
        sys.stderr.write("NAB scores: %s\n" % json.dumps({k: v["score"] for k, v in r.items()}))
        self.assertEqual(r["standard"]["windows"], 57)
        self.assertGreaterEqual(r["standard"]["score"], STANDARD_MIN)
        self.assertGreaterEqual(r["reward_low_FP_rate"]["score"], LOW_FP_MIN)
        self.assertGreaterEqual(r["reward_low_FN_rate"]["score"], LOW_FN_MIN)

    def test_layout_matches_the_data(self):
        """Every input file has CATEGORY/NAME.csv with one row per data row, scores in [0, 1]."""
        n_files = 0
        for cat in sorted(os.listdir(DATA)):
            for name in sorted(os.listdir(os.path.join(DATA, cat))):
                if not name.endswith(".csv"):
                    continue
                n_files += 1
                with open(os.path.join(DATA, cat, name), newline="") as f:
                    data = list(csv.DictReader(f))
                with open(os.path.join(self.out, cat, name), newline="") as f:
                    res = list(csv.DictReader(f))
                self.assertEqual(len(res), len(data), name)
                self.assertEqual([r["timestamp"] for r in res], [r["timestamp"] for r in data], name)
                scores = [float(r["anomaly_score"]) for r in res]
                self.assertTrue(all(0.0 <= s <= 1.0 for s in scores), name)
                self.assertGreater(max(scores), 0.0, name)
        self.assertEqual(n_files, 31)


GOOD = "timestamp,value\n" + "".join("2014-04-01 %02d:%02d:00,%d\n" % (i // 60, i % 60, i % 7) for i in range(600))


class BadInput(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.data = os.path.join(self.tmp.name, "data")
        self.out = os.path.join(self.tmp.name, "out")
        os.makedirs(os.path.join(self.data, "cat"))

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.data, "cat", name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_bad_files_say_file_and_line(self):
        good = self.write("good.csv", GOOD)
        lines = GOOD.splitlines(True)
        bad_value = self.write("bad_value.csv", "".join(lines[:4]) + "2014-04-01 00:03:30,abc\n" + "".join(lines[4:]))
        bad_ts = self.write("bad_ts.csv", "".join(lines[:9]) + "2014-04-31 00:00:00,1\n")
        short = self.write("short_row.csv", "".join(lines[:2]) + "2014-04-01 00:01:30\n")
        header = self.write("no_value.csv", "timestamp,reading\n2014-04-01 00:00:00,1\n")
        truncated = self.write("truncated.csv", GOOD[: GOOD.index("\n", 200) - 6])
        dup = self.write("dup.csv", "".join(lines[:6]) + lines[5] + "".join(lines[6:]))
        res = run("--data", self.data, "--out", self.out)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        err = res.stderr
        for want in ['%s:5: value "abc" is not a finite number' % bad_value,
                     '%s:10: bad timestamp "2014-04-31 00:00:00"' % bad_ts,
                     "%s:3: expected at least 2 fields, found 1" % short,
                     "%s:1: header must name the columns timestamp and value" % header,
                     # cut inside the timestamp: no value field left
                     "%s:%d: expected at least 2 fields, found 1" % (truncated, GOOD[:200].count("\n") + 1),
                     "%s:7: warning: 1 duplicate" % dup]:
            self.assertIn(want, err)
        # the usable files are scored, the unusable ones get no output
        for name in ("good.csv", "dup.csv"):
            with open(os.path.join(self.out, "cat", name)) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual(len(rows), 600 + (name == "dup.csv"))
        for name in ("bad_value.csv", "bad_ts.csv", "short_row.csv", "no_value.csv", "truncated.csv"):
            self.assertFalse(os.path.exists(os.path.join(self.out, "cat", name)), name)
        self.assertEqual(sorted(os.listdir(os.path.join(self.out, "cat"))), ["dup.csv", "good.csv"])
        self.assertIn("7 files (5 unusable)", res.stdout)
        self.assertTrue(os.path.exists(good))

    def test_usage_errors(self):
        self.assertEqual(run().returncode, 2)
        self.assertEqual(run("--data", self.data).returncode, 2)
        self.assertEqual(run("--data", self.data, "--out", self.out, "--bogus").returncode, 2)
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--data DIR", r.stdout)
        r = run("--data", os.path.join(self.tmp.name, "nope"), "--out", self.out)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a directory", r.stderr)
        r = run("--data", self.data, "--out", self.out)  # no csv files at all
        self.assertEqual(r.returncode, 1)
        self.assertIn("no *.csv files", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
