"""sections.py - what the benchmark scripts that own one section of
bench/RESULTS.md share (bench/nab.py: j, bench/rul.py: k): the machine line,
the commit, and rewriting one `## X) ...` section in place (new sections go
before `## Reading`)."""
import os
import platform
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d CPUs (`nproc`), %s, kernel %s" % (os.cpu_count() or 0, model, platform.release())


def commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def replace_section(results_md, letter, text):
    """Puts text (a whole section, heading included) in place of the
    `## LETTER) ...` section of results_md, or before `## Reading`."""
    try:
        with open(results_md) as f:
            md = f.read()
    except FileNotFoundError:
        md = ""
    pat = re.compile(r"^## %s\) .*?(?=^## |\Z)" % re.escape(letter), re.S | re.M)
    if pat.search(md):
        md = pat.sub(lambda _m: text, md, count=1)
    elif "\n## Reading" in md:
        i = md.index("\n## Reading") + 1
        md = md[:i] + text + md[i:]
    else:
        md = md.rstrip() + "\n\n" + text
    with open(results_md, "w") as f:
        f.write(md)
