#!/usr/bin/python3
"""bench/plot.py - minimal SVG grouped bar charts with min-max whiskers, for
bench/report.py. Standard library only.

bars(): groups is a list of (label, [(series, median, lo, hi) ...]); a None
median draws "n/a" instead of a bar. The y axis starts at 0 so bar heights
compare honestly.
"""
import math
from xml.sax.saxutils import escape

COLORS = {"mosquitto": "#3b6ea8", "nats": "#2e9e6a", "mote": "#d9822b"}
EXTRA = ["#7a5195", "#bc5090", "#ef5675", "#ffa600"]


def nice_max(v):
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e:
            return m * e
    return 10 * e


def fmt(v):
    if v >= 1e6:
        return "%.3gM" % (v / 1e6)
    if v >= 1e3:
        return "%.3gk" % (v / 1e3)
    return "%.3g" % v


def bars(path, title, ylabel, groups):
    series = []
    for _, items in groups:
        for s, _, _, _ in items:
            if s not in series:
                series.append(s)
    top = max([hi if hi is not None else (m or 0) for _, items in groups
               for _, m, _, hi in items] + [0])
    ymax = nice_max(top * 1.05)
    W, H, L, R, T, B = max(720, 100 + 110 * len(groups)), 380, 80, 20, 50, 70
    pw, ph = W - L - R, H - T - B
    gw = pw / max(1, len(groups))
    bw = min(60.0, gw * 0.8 / max(1, len(series)))
    y = lambda v: T + ph - ph * (v / ymax)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>' % (L, escape(title)),
           '<text transform="translate(16,%d) rotate(-90)" text-anchor="middle">%s</text>'
           % (T + ph // 2, escape(ylabel))]
    for i in range(6):
        v = ymax * i / 5
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (L, L + pw, y(v), y(v)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (L - 6, y(v) + 4, fmt(v)))
    for gi, (label, items) in enumerate(groups):
        x0 = L + gi * gw + (gw - bw * len(series)) / 2
        for s, m, lo, hi in items:
            si = series.index(s)
            color = COLORS.get(s, EXTRA[si % len(EXTRA)])
            x = x0 + si * bw
            if m is None:
                out.append('<text x="%.1f" y="%.1f" text-anchor="middle" fill="#888">n/a</text>'
                           % (x + bw / 2, T + ph - 4))
                continue
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                       % (x + 2, y(m), bw - 4, T + ph - y(m), color))
            if lo is not None and hi is not None:
                cx = x + bw / 2
                out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>'
                           % (cx, cx, y(lo), y(hi)))
                for v in (lo, hi):
                    out.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black"/>'
                               % (cx - 5, cx + 5, y(v), y(v)))
            out.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>'
                       % (x + bw / 2, y(hi if hi is not None else m) - 4, fmt(m)))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                   % (L + gi * gw + gw / 2, T + ph + 18, escape(label)))
    out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>' % (L, L + pw, T + ph, T + ph))
    lx = L
    for si, s in enumerate(series):
        color = COLORS.get(s, EXTRA[si % len(EXTRA)])
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, H - 26, color))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 16, H - 16, escape(s)))
        lx += 24 + 8 * len(s) + 20
    out.append('</svg>')
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
