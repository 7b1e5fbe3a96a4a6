// chart.js - one uPlot time chart per metric: a time axis, a value axis
// with the metric's unit, the selected window span() = {from, to} up to
// now (a device that went quiet shows the gap at the right), and the
// container's width.
import uPlot from 'uplot';
import { fmtNum } from './dom.js';

const AXIS = { stroke: '#52606d', grid: { stroke: '#edf0f4', width: 1 }, ticks: { stroke: '#dde3ea', width: 1 },
  font: '11px system-ui, sans-serif' };

export function makeChart(el, { metric, unit, color, span }) {
  const plot = new uPlot({
    width: Math.max(200, el.clientWidth || 400),
    height: 170,
    padding: [8, 22, 0, 0],
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    scales: {
      // Up to now; from the window's start, or from the first point when
      // the data begins later (a new device: its minutes fill the chart
      // instead of a sliver at the right), at least 10 s.
      x: { time: true, range: (u) => {
        const w = span();
        const xs = u.data[0];
        let lo = w.from / 1000;
        const hi = w.to / 1000;
        if (xs && xs.length && xs[0] > lo) lo = Math.min(xs[0], hi - 10);
        return [lo, hi];
      } },
      y: { range: (u, min, max) => {
        if (min == null || max == null) return [0, 1];
        if (min === max) { const d = Math.abs(min) * 0.05 || 1; return [min - d, max + d]; }
        const pad = (max - min) * 0.08;
        return [min - pad, max + pad];
      } },
    },
    series: [
      {},
      { label: metric, stroke: color, width: 1.6, fill: `${color}14`, points: { show: false },
        value: (u, v) => (v == null ? '–' : `${fmtNum(v)} ${unit}`) },
    ],
    axes: [
      { ...AXIS },
      { ...AXIS, size: 62, label: unit || undefined, labelSize: 16, labelFont: '11px system-ui, sans-serif',
        values: (u, vals) => vals.map((v) => fmtNum(v)) },
    ],
  }, [[], []], el);
  const ro = new ResizeObserver(() => {
    const w = el.clientWidth;
    if (w > 0 && Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: 170 });
  });
  ro.observe(el);
  return {
    plot,
    set(xs, ys) { plot.setData([xs, ys]); },
    destroy() { ro.disconnect(); plot.destroy(); },
  };
}

export const PALETTE = ['#2f6f9f', '#c2410c', '#15803d', '#7c3aed', '#b45309', '#0e7490', '#be185d', '#4d7c0f'];
