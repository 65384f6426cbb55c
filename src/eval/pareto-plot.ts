/**
 * The quality-versus-average-bits plot of `pmpd score --plot`: one SVG, no dependencies.
 * Static-search runs (files named `...-schedule-<step>...`) are joined as a curve in order
 * of their bit-width; every other file is a labelled point (baselines, schedulers). Float
 * runs (16 bits or more) are drawn as horizontal reference lines, so that they do not
 * stretch the bit axis away from the quantized runs.
 */
export interface PlotPoint {
  label: string;
  bits: number;
  quality: number;
  /** Points with the same series name are joined by a line. */
  series: string | null;
}

const W = 640, H = 420, M = { left: 64, right: 24, top: 36, bottom: 52 };

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** "Nice" tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

export function paretoSvg(points: PlotPoint[], title: string, metric: string): string {
  const valid = points.filter((p) => Number.isFinite(p.bits) && Number.isFinite(p.quality));
  const references = valid.filter((p) => p.bits >= 16);
  const finite = valid.length > references.length ? valid.filter((p) => p.bits < 16) : valid;
  const xs = finite.map((p) => p.bits), ys = [...finite, ...references].map((p) => p.quality);
  const pad = (lo: number, hi: number) => { const d = (hi - lo) * 0.08 || 0.1; return [lo - d, hi + d] as const; };
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  for (const t of ticks(x0, x1)) {
    parts.push(`<line x1="${sx(t)}" y1="${M.top}" x2="${sx(t)}" y2="${H - M.bottom}" stroke="#eee"/>`,
      `<text x="${sx(t)}" y="${H - M.bottom + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const t of ticks(y0, y1)) {
    parts.push(`<line x1="${M.left}" y1="${sy(t)}" x2="${W - M.right}" y2="${sy(t)}" stroke="#eee"/>`,
      `<text x="${M.left - 6}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`);
  }
  parts.push(
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#333"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">average bits per weight (decode)</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">${escapeXml(metric)}</text>`,
  );
  if (finite !== valid) {
    for (const r of references) {
      parts.push(`<line x1="${M.left}" y1="${sy(r.quality).toFixed(1)}" x2="${W - M.right}" y2="${sy(r.quality).toFixed(1)}" stroke="#2ca02c" stroke-dasharray="6 4"/>`,
        `<text x="${W - M.right - 4}" y="${(sy(r.quality) - 5).toFixed(1)}" text-anchor="end" font-size="10" fill="#2ca02c">${escapeXml(`${r.label} (${r.bits} bits)`)}</text>`);
    }
  }
  const series = new Map<string, PlotPoint[]>();
  for (const p of finite) if (p.series !== null) series.set(p.series, [...(series.get(p.series) ?? []), p]);
  for (const [, pts] of series) {
    const path = [...pts].sort((a, b) => a.bits - b.bits).map((p, i) => `${i === 0 ? "M" : "L"}${sx(p.bits).toFixed(1)},${sy(p.quality).toFixed(1)}`).join(" ");
    parts.push(`<path d="${path}" fill="none" stroke="#1f77b4" stroke-width="2"/>`);
  }
  for (const p of finite) {
    const color = p.series !== null ? "#1f77b4" : "#d62728";
    parts.push(`<circle cx="${sx(p.bits).toFixed(1)}" cy="${sy(p.quality).toFixed(1)}" r="4" fill="${color}"/>`,
      // Labels of points near the right edge go to their left, to stay inside the plot.
      sx(p.bits) > W * 0.75
        ? `<text x="${(sx(p.bits) - 6).toFixed(1)}" y="${(sy(p.quality) - 6).toFixed(1)}" text-anchor="end" font-size="10" fill="#333">${escapeXml(p.label)}</text>`
        : `<text x="${(sx(p.bits) + 6).toFixed(1)}" y="${(sy(p.quality) - 6).toFixed(1)}" font-size="10" fill="#333">${escapeXml(p.label)}</text>`);
  }
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
