/**
 * DOM and text helpers of the dashboard: elements built with createElement/textContent only (data
 * never goes through innerHTML, so nothing the cluster reports can inject markup), and the same
 * wording as the CLI (cli/format.ts) for times, durations and event lines.
 */

const SVG_NS = 'http://www.w3.org/2000/svg'

/**
 * An element: `h('td', { class: 'x', 'data-id': id }, 'text', child)`. Attributes are set with
 * setAttribute (undefined/null/false skip one); children are nodes or strings (as text nodes).
 */
export function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children)
}

/** The same for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children)
}

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c)
  }
  return el
}

/** Replace the children of `el`. */
export function put(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null && c !== false))
}

export const text = (x) => (typeof x === 'string' || typeof x === 'number' ? String(x) : '?')

/** `12:03:04.123` of an ISO time (the browser's clock and zone), or `-`. */
export function clock(iso) {
  if (typeof iso !== 'string' || Number.isNaN(Date.parse(iso))) return '-'
  const d = new Date(iso)
  const p = (n, w = 2) => String(n).padStart(w, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

/** `1,984 ms`, `12.3 s`, `4 min`, `1.5 h`, or `-` (as the CLI prints them). */
export function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-'
  if (ms < 10_000) return `${Math.round(ms).toLocaleString('en-US')} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  return `${(ms / 3_600_000).toFixed(1)} h`
}

/** How long ago an ISO time was, for "boss for …": `42 s`, `3 min 5 s`, `2 h 10 min`. */
export function age(iso, now = Date.now()) {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return '-'
  const sec = Math.max(0, Math.floor((now - t) / 1000))
  if (sec < 120) return `${sec} s`
  if (sec < 7200) return `${Math.floor(sec / 60)} min ${sec % 60} s`
  if (sec < 172_800) return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`
  return `${Math.floor(sec / 86_400)} d ${Math.floor((sec % 86_400) / 3600)} h`
}

/** `1,234` */
export const count = (n) => (typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US') : '-')

/** What one cluster event says, in the CLI's words (cli/format.ts eventLine, without time and type). */
export function eventWhat(e) {
  const d = e.data ?? {}
  const boss = typeof d.boss === 'object' && d.boss !== null ? d.boss : {}
  switch (e.type) {
    case 'boss.elected':
      return `${text(boss.id)} (${text(boss.host)} pid ${text(boss.pid)})`
    case 'boss.active':
      return `dispatching after ${duration(d.takeoverMs)}; adopted ${text(d.adopted)}, requeued ${text(d.requeued)}`
    case 'boss.deposed':
    case 'write.fenced':
      return text(d.reason)
    case 'worker.joined':
    case 'worker.left':
      return `${text(d.worker)}${typeof d.reason === 'string' ? ` (${d.reason})` : ''}`
    case 'job.redispatched':
      return `${text(d.jobs)} job(s) of ${text(d.worker)} (${text(d.reason)})`
    case 'dispatch.refused':
      return `${text(d.count)} × ${text(d.what)} of epoch ${text(d.epoch)}: ${text(d.reason)}, newest ${text(d.newest)}`
    default:
      return `${text(d.server)}${d.downMs !== undefined ? ` down ${duration(d.downMs)}` : ''}`
  }
}

/** Whether a job state is final. */
export const isFinal = (state) => state === 'succeeded' || state === 'failed' || state === 'cancelled'

/** JSON for display, cut at `max` characters. */
export function shortJson(x, max = 2000) {
  let out
  try {
    out = JSON.stringify(x, null, 2)
  } catch {
    out = String(x)
  }
  if (out === undefined) return '(none)'
  return out.length > max ? `${out.slice(0, max)}\n… (${out.length - max} more characters)` : out
}
