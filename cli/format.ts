/** Plain-text rendering for the CLI: aligned tables, short times and durations. No colours, no dependency. */
import type { LeadershipTerm } from '../runner/events/leadership.js'
import type { ClusterEvent } from '../runner/events/model.js'

const text = (x: unknown): string => (typeof x === 'string' || typeof x === 'number' ? String(x) : '?')

/** Columns padded to their widest cell; `header` first. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** `12:03:04.123` of an ISO time (local clock of the reader), or `-`. */
export function clock(iso: unknown): string {
  if (typeof iso !== 'string' || Number.isNaN(Date.parse(iso))) return '-'
  const d = new Date(iso)
  const p = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

/** `1,984 ms`, `12.3 s`, `4 min`, or `-`. */
export function duration(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-'
  if (ms < 10_000) return `${Math.round(ms).toLocaleString('en-US')} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  return `${(ms / 3_600_000).toFixed(1)} h`
}

/** One cluster event as a line: time, type, epoch, what. */
export function eventLine(e: ClusterEvent): string {
  const d = e.data
  const boss = (typeof d.boss === 'object' && d.boss !== null ? d.boss : {}) as Record<string, unknown>
  let what: string
  switch (e.type) {
    case 'boss.elected':
      what = `${text(boss.id)} (${text(boss.host)} pid ${text(boss.pid)})`
      break
    case 'boss.active':
      what = `dispatching after ${duration(d.takeoverMs)}; adopted ${text(d.adopted)}, requeued ${text(d.requeued)}`
      break
    case 'boss.deposed':
    case 'write.fenced':
      what = text(d.reason)
      break
    case 'worker.joined':
    case 'worker.left':
      what = `${text(d.worker)}${typeof d.reason === 'string' ? ` (${d.reason})` : ''}`
      break
    case 'job.redispatched':
      what = `${text(d.jobs)} job(s) of ${text(d.worker)} (${text(d.reason)})`
      break
    case 'dispatch.refused':
      what = `${text(d.count)} × ${text(d.what)} of epoch ${text(d.epoch)}: ${text(d.reason)}, newest ${text(d.newest)}`
      break
    default:
      what = `${text(d.server)}${d.downMs !== undefined ? ` down ${duration(d.downMs)}` : ''}`
  }
  const epoch = e.epoch === undefined ? '' : ` epoch ${e.epoch}`
  return `${clock(e.at)}  ${e.type.padEnd(19)}${epoch}  ${what}  [${e.source.id}]`
}

/**
 * A leadership change in one line: who holds the new term, whom it followed and why that term
 * ended, the gap without a dispatching boss, and the takeover. `previous` is the term before it.
 */
export function leadershipChangeLine(term: LeadershipTerm, previous: LeadershipTerm | undefined): string {
  const who = `epoch ${term.epoch}: ${term.boss.id} (${term.boss.host} pid ${term.boss.pid})`
  const take = term.takeover
  const takeover =
    take === undefined
      ? ''
      : `; takeover ${duration(take.takeoverMs)}, adopted ${text(take.adopted)}, requeued ${text(take.requeued)}`
  if (previous === undefined || term.after === 'first') return `${who} is the boss (first start)${takeover}`
  const ended = previous.ended ?? term.after ?? 'ended'
  const leaderless = term.leaderlessMs === undefined ? '' : ` (leaderless ${duration(term.leaderlessMs)})`
  const gap = `gap ${duration(term.gapBeforeMs)}${leaderless}`
  return `${who} took over from ${previous.boss.id} (${ended}); ${gap}${takeover}`
}
