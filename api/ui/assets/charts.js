/**
 * Throughput and queue depth over the last two minutes, from the polls of GET /cluster/stats, and a
 * hand-drawn sparkline of them (inline SVG, no chart library). Throughput is Δfinished / Δt between
 * two reports of the same boss term (`finished` restarts at 0 with each epoch, so a pair across a
 * change of epoch gives no point: the line breaks there instead of dipping or spiking).
 */
import { s } from './dom.js'

const WINDOW_MS = 120_000

/** Samples of the load reports; `add()` one per poll. */
export class LoadHistory {
  constructor() {
    this.samples = [] // { t, at, atMs, epoch, queued, running, finished, rate (jobs/s) | null }
  }

  /**
   * A GET /cluster/stats answer. Repeats of the same report (same `at`) are skipped. Δt is taken
   * between the reports' times (the API's clock); points are placed at the browser's clock (`now`).
   */
  add(stats, now = Date.now()) {
    if (typeof stats?.queued !== 'number') return
    const atMs = stats.at ? Date.parse(stats.at) : now
    const prev = this.samples[this.samples.length - 1]
    if (prev && stats.at && prev.at === stats.at) return
    let rate = null
    const sameTerm = prev && prev.epoch === stats.epoch && stats.epoch !== null
    if (sameTerm && atMs > prev.atMs && stats.finished >= prev.finished)
      rate = ((stats.finished - prev.finished) * 1000) / (atMs - prev.atMs)
    const { at, epoch, queued, running, finished } = stats
    this.samples.push({ t: now, at, atMs, epoch, queued, running, finished, rate })
    while (this.samples.length > 0 && this.samples[0].t < now - WINDOW_MS) this.samples.shift()
  }

  /**
   * The latest throughput, jobs/s (the mean of the last few points, a poll is noisy), or null when
   * there is none or no new report came for a few seconds (the boss is gone: its last rate is not news).
   */
  rate(now = Date.now()) {
    const last = this.samples[this.samples.length - 1]
    if (!last || now - last.t > 5000) return null
    const recent = this.samples.filter((x) => x.rate !== null).slice(-3)
    if (recent.length === 0) return null
    return recent.reduce((a, x) => a + x.rate, 0) / recent.length
  }
}

/**
 * A sparkline of `key` over the window: a polyline per run of points that have a value, scaled to
 * the largest value. `label` is its accessible name.
 */
export function sparkline(samples, key, { width = 300, height = 44, label, now = Date.now(), testid } = {}) {
  const values = samples.map((x) => x[key]).filter((v) => typeof v === 'number')
  const max = Math.max(1, ...values)
  const x = (t) => ((t - (now - WINDOW_MS)) / WINDOW_MS) * width
  const y = (v) => height - 2 - (v / max) * (height - 4)
  const svg = s('svg', {
    class: `spark spark-${key}`,
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': label,
    'data-testid': testid,
    'data-points': values.length,
  })
  svg.append(s('line', { class: 'spark-base', x1: 0, y1: height - 1, x2: width, y2: height - 1 }))
  let run = []
  const flush = () => {
    if (run.length === 1) svg.append(s('circle', { cx: run[0][0], cy: run[0][1], r: 1.5, class: 'spark-dot' }))
    else if (run.length > 1)
      svg.append(s('polyline', { points: run.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ') }))
    run = []
  }
  for (const p of samples) {
    const v = p[key]
    if (typeof v !== 'number') flush()
    else run.push([Math.max(0, x(p.t)), y(v)])
  }
  flush()
  svg.append(s('text', { x: 2, y: 10, class: 'spark-max' }, `max ${fmt(max)}`))
  return svg
}

const fmt = (v) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : String(Math.round(v * 10) / 10))
