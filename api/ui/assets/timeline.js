/**
 * The leadership timeline: one row per boss term (GET /cluster/leadership), oldest at the top, as a
 * bar on a shared time axis from its election to its end (or now), labelled with its epoch and holder,
 * how it ended and the jobs re-dispatched in it. The failover gap before a term (`gapBeforeMs`: no
 * boss dispatching) is drawn hatched red over the start of its row with its value, never narrower
 * than a few pixels so a 2 s gap stays visible on a week-long axis. Inline SVG built element by
 * element (no library); every bar carries `data-term-epoch`, every gap `data-gap-ms`.
 */
import { clock, count, duration, h, s, text } from './dom.js'

const MAX_TERMS = 12
const LABEL_W = 230
const AXIS_H = 26
const ROW_H = 36
const BAR_H = 16
const MIN_GAP_W = 6
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400].map(
  (x) => x * 1000,
)

const clip = (x, n) => (x.length > n ? `${x.slice(0, n - 1)}…` : x)
const ms = (iso) => (typeof iso === 'string' ? Date.parse(iso) : NaN)

/** The gap before `term` as [start, end] ms, when it has one. */
function gapOf(term) {
  const end = ms(term.dispatchingAt)
  if (typeof term.gapBeforeMs !== 'number' || Number.isNaN(end)) return undefined
  return [end - term.gapBeforeMs, end]
}

/** What the row's second line says about a term. */
function termNote(term, current, redispatched) {
  const parts = []
  if (current) parts.push(term.dispatchingAt ? 'current' : 'taking over')
  else parts.push(`ended ${text(term.ended ?? 'unknown')}`)
  if (redispatched > 0) parts.push(`${count(redispatched)} job(s) re-dispatched`)
  const tk = term.takeover
  if (tk && (tk.adopted || tk.requeued)) parts.push(`adopted ${count(tk.adopted)}, requeued ${count(tk.requeued)}`)
  return parts.join(' · ')
}

function tooltip(term, redispatched) {
  const b = term.boss ?? {}
  return [
    `epoch ${term.epoch}: ${text(b.id)} (${text(b.host)} pid ${text(b.pid)})`,
    `elected ${clock(term.start)}${term.dispatchingAt ? `, dispatching ${clock(term.dispatchingAt)}` : ''}`,
    term.end ? `ended ${clock(term.end)}: ${text(term.ended)}` : 'still boss',
    `after: ${text(term.after ?? '-')}`,
    `gap before: ${duration(term.gapBeforeMs)}, leaderless ${duration(term.leaderlessMs)}`,
    `takeover ${duration(term.takeover?.takeoverMs)}; re-dispatched jobs: ${count(redispatched)}`,
  ].join('\n')
}

function ticks(t0, t1, plotW) {
  const span = Math.max(1, t1 - t0)
  const step = STEPS.find((st) => span / st <= Math.max(2, plotW / 110)) ?? STEPS[STEPS.length - 1]
  const out = []
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t)
  const label = (t) => {
    const d = new Date(t)
    const p = (n) => String(n).padStart(2, '0')
    const hm = `${p(d.getHours())}:${p(d.getMinutes())}`
    if (step < 60_000) return `${hm}:${p(d.getSeconds())}`
    return step >= 21_600_000 ? `${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}` : hm
  }
  return out.map((t) => [t, label(t)])
}

/**
 * The timeline element for `terms` (newest first, as the API answers), `redispatched` (Map epoch →
 * jobs), at `now`, `width` px wide; `windowMs` > 0 shows only that much of the recent past.
 */
export function timeline(terms, redispatched, { now = Date.now(), width = 900, windowMs = 0 } = {}) {
  if (!Array.isArray(terms) || terms.length === 0)
    return h('p', { class: 'muted', 'data-testid': 'timeline-empty' }, 'no boss term in the retained events yet')
  const newest = terms[0]
  let shown = terms.slice(0, MAX_TERMS).reverse()
  const latest = Math.max(now, ...terms.map((x) => Math.max(ms(x.start) || 0, ms(x.end) || 0)))
  const endOf = (x) => (x === newest && !x.end ? latest : ms(x.end) || ms(x.start))
  if (windowMs > 0) shown = shown.filter((x) => x === newest || endOf(x) >= latest - windowMs)
  const starts = shown.flatMap((x) => [ms(x.start), gapOf(x)?.[0] ?? Infinity]).filter(Number.isFinite)
  let t0 = Math.min(...starts)
  if (windowMs > 0) t0 = Math.max(t0, latest - windowMs)
  const t1 = latest
  const plotW = Math.max(200, width - LABEL_W - 12)
  const X = (t) => LABEL_W + Math.min(plotW, Math.max(0, ((t - t0) / Math.max(1, t1 - t0)) * plotW))
  const H = AXIS_H + shown.length * ROW_H + 4

  const svg = s('svg', {
    class: 'timeline-svg',
    width,
    height: H,
    viewBox: `0 0 ${width} ${H}`,
    role: 'img',
    'aria-label': `leadership timeline: ${shown.length} term(s)`,
  })
  const hatch = s(
    'pattern',
    { id: 'gap-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
    s('rect', { width: 6, height: 6, class: 'hatch-bg' }),
    s('line', { x1: 0, y1: 0, x2: 0, y2: 6, class: 'hatch-line' }),
  )
  svg.append(s('defs', {}, hatch))

  for (const [t, label] of ticks(t0, t1, plotW)) {
    const x = X(t)
    svg.append(s('line', { class: 'tick', x1: x, y1: AXIS_H - 6, x2: x, y2: H }))
    svg.append(s('text', { class: 'tick-label', x, y: AXIS_H - 10, 'text-anchor': 'middle' }, label))
  }
  svg.append(s('line', { class: 'now', x1: X(t1), y1: AXIS_H - 6, x2: X(t1), y2: H }))

  shown.forEach((term, i) => {
    const y = AXIS_H + i * ROW_H
    const current = term === newest && !term.end
    const redis = redispatched.get(term.epoch) ?? 0
    const holder = term.boss?.id ?? '?'
    const row = s('g', { class: 'term-row', 'data-row-epoch': term.epoch })
    row.append(s('title', {}, tooltip(term, redis)))
    row.append(
      s(
        'text',
        { class: 'term-label', x: 4, y: y + 15 },
        s('tspan', { class: 'epoch' }, `epoch ${term.epoch}`),
        ' · ',
        clip(holder, 20),
      ),
      s(
        'text',
        { class: `term-note${term.ended === 'crashed' ? ' crashed' : ''}`, x: 4, y: y + 29 },
        clip(termNote(term, current, redis), 38),
      ),
    )
    const x1 = X(ms(term.start))
    const x2 = Math.max(x1 + 3, X(endOf(term)))
    const state = current ? 'current' : term.ended === 'crashed' ? 'crashed' : 'ended'
    row.append(
      s('rect', {
        class: `term-bar ${state}`,
        x: x1,
        y: y + 10,
        width: x2 - x1,
        height: BAR_H,
        rx: 3,
        'data-term-epoch': term.epoch,
        'data-boss-id': holder,
        'data-ended': term.ended,
      }),
    )
    if (term.ended === 'crashed') row.append(s('text', { class: 'crash-mark', x: x2 + 2, y: y + 23 }, '✕'))
    const gap = gapOf(term)
    if (gap) row.append(...gapMark(X(gap[0]), X(gap[1]), y, term.gapBeforeMs, term.epoch, LABEL_W))
    else if (current && !term.dispatchingAt) {
      const prev = terms[1]
      const from = prev ? ms(prev.end) || ms(term.start) : ms(term.start)
      row.append(
        ...gapMark(X(from), X(t1), y, undefined, term.epoch, LABEL_W, `no dispatch yet ${duration(t1 - from)}`),
      )
    }
    svg.append(row)
  })
  return svg
}

/** The hatched gap rectangle and its label (left of it when there is room, else right). */
function gapMark(xa, xb, y, gapMs, epoch, minX, label = `gap ${duration(gapMs)}`) {
  const w = Math.max(MIN_GAP_W, xb - xa)
  const x = Math.min(xa, xb - w) < minX ? minX : Math.min(xa, xb - w)
  const rect = s('rect', {
    class: `gap${gapMs === undefined ? ' open' : ''}`,
    x,
    y: y + 6,
    width: w,
    height: BAR_H + 8,
    fill: 'url(#gap-hatch)',
    'data-gap-ms': gapMs === undefined ? undefined : Math.round(gapMs),
    'data-gap-open': gapMs === undefined ? true : undefined,
    'data-gap-epoch': epoch,
  })
  const room = x - minX > label.length * 6.5 + 6
  const tx = room ? x - 4 : x + w + 4
  const txt = s('text', { class: 'gap-label', x: tx, y: y + 22, 'text-anchor': room ? 'end' : 'start' }, label)
  return [rect, txt]
}

/** One line summing up the latest failover, for the heading. */
export function latestFailover(terms) {
  const t = Array.isArray(terms) ? terms.find((x) => typeof x.gapBeforeMs === 'number') : undefined
  if (!t) return 'no failover in the retained events'
  const when = clock(t.dispatchingAt ?? t.start)
  const gap = duration(t.gapBeforeMs)
  return `last failover ${when}: epoch ${t.epoch} to ${text(t.boss?.id)} after ${text(t.after)}, gap ${gap}`
}
