/**
 * The leadership history, rebuilt from the boss events alone (pure; GET /cluster/leadership): one
 * term per epoch with its holder, start, end, how it ended, and the failover gap before it.
 *
 * - start: the `boss.elected` event's time (or the earliest event of that epoch);
 * - end: the boss's own `boss.deposed` time; a boss that never said it (kill -9, a machine gone)
 *   ended when its successor's workers last saw a dispatch from it (`predecessorLastDispatchAt` of
 *   the successor's `boss.active`), else at the successor's election — `ended: 'crashed'`;
 * - gapBeforeMs: the time no boss dispatched — from when the predecessor stopped to this term's first
 *   moment of dispatching (`boss.active`'s `dispatchingAt`). A deposed predecessor stopped at its
 *   `boss.deposed`; a crashed one at its last dispatch the workers saw, but no earlier than one
 *   session timeout before this term's election (an idle boss's last dispatch may be long before).
 * - leaderlessMs: from the predecessor's end to this term's election, as ZooKeeper ordered it.
 */
import type { ClusterEvent } from './model.js'

export interface TermHolder {
  id: string
  host: string
  pid: number
}

export interface LeadershipTerm {
  epoch: number
  boss: TermHolder
  start: string
  end?: string
  /** Why the term ended: the boss's own reason (resigned, sigterm, suspended, lost, fenced, …) or `crashed`. */
  ended?: string
  /** When the term started dispatching. */
  dispatchingAt?: string
  /** How this term began: `first`, or after its predecessor `crashed` / `resigned` / … (its `ended`). */
  after?: string
  gapBeforeMs?: number
  leaderlessMs?: number
  takeover?: { takeoverMs?: number; adopted?: number; requeued?: number }
}

/** What the events of one epoch say, before they become a LeadershipTerm. */
interface TermParts {
  epoch: number
  boss?: TermHolder
  start?: string
  firstAt: string
  deposedAt?: string
  /** ZooKeeper session timeout of the elected boss (from `boss.elected`). */
  sessionTimeoutMs?: number
  deposedReason?: string
  dispatchingAt?: string
  /** The last dispatch the workers saw from an older boss (that boss's epoch). */
  predecessorLastDispatch?: { epoch: number; at: string }
  takeover?: LeadershipTerm['takeover']
}

const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined)
const str = (x: unknown): string | undefined => (typeof x === 'string' && !Number.isNaN(Date.parse(x)) ? x : undefined)
const ms = (a: string | undefined, b: string | undefined): number | undefined =>
  a === undefined || b === undefined ? undefined : Math.max(0, Date.parse(b) - Date.parse(a))

function holderOf(x: unknown): TermHolder | undefined {
  if (typeof x !== 'object' || x === null) return undefined
  const h = x as Record<string, unknown>
  if (typeof h.id !== 'string' || typeof h.host !== 'string' || typeof h.pid !== 'number') return undefined
  return { id: h.id, host: h.host, pid: h.pid }
}

/** When a crashed boss stopped dispatching, as well as its successor can tell. */
function crashedAt(lastDispatch: string | undefined, successor: TermParts): string | undefined {
  const elected = successor.start ?? successor.firstAt
  const earliest =
    successor.sessionTimeoutMs === undefined
      ? undefined
      : new Date(Date.parse(elected) - successor.sessionTimeoutMs).toISOString()
  if (lastDispatch === undefined) return earliest ?? elected
  if (earliest === undefined) return lastDispatch
  return Date.parse(lastDispatch) > Date.parse(earliest) ? lastDispatch : earliest
}

/** Terms, newest first, from the boss events in any order (other events are ignored). */
export function leadershipTerms(events: readonly ClusterEvent[]): LeadershipTerm[] {
  const byEpoch = new Map<number, TermParts>()
  for (const e of events) {
    if (e.epoch === undefined || !e.type.startsWith('boss.')) continue
    let p = byEpoch.get(e.epoch)
    if (!p) byEpoch.set(e.epoch, (p = { epoch: e.epoch, firstAt: e.at }))
    if (Date.parse(e.at) < Date.parse(p.firstAt)) p.firstAt = e.at
    p.boss ??= e.type === 'boss.elected' ? holderOf(e.data.boss) : undefined
    if (e.type === 'boss.elected') {
      p.start = e.at
      const timeout = num(e.data.sessionTimeoutMs)
      if (timeout !== undefined) p.sessionTimeoutMs = timeout
    }
    if (e.type === 'boss.active') {
      p.dispatchingAt = str(e.data.dispatchingAt) ?? e.at
      const last = str(e.data.predecessorLastDispatchAt)
      const lastEpoch = num(e.data.predecessorEpoch)
      if (last !== undefined && lastEpoch !== undefined) p.predecessorLastDispatch = { epoch: lastEpoch, at: last }
      p.takeover = {
        ...(num(e.data.takeoverMs) === undefined ? {} : { takeoverMs: num(e.data.takeoverMs) }),
        ...(num(e.data.adopted) === undefined ? {} : { adopted: num(e.data.adopted) }),
        ...(num(e.data.requeued) === undefined ? {} : { requeued: num(e.data.requeued) }),
      }
    }
    if (e.type === 'boss.deposed' && p.deposedAt === undefined) {
      p.deposedAt = e.at
      p.deposedReason = typeof e.data.reason === 'string' ? e.data.reason : 'unknown'
    }
    // A term's holder is the source of its events when the elected event is missing (expired).
    p.boss ??= { id: e.source.id, host: e.source.host, pid: e.source.pid }
  }
  const ordered = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch)
  const terms: LeadershipTerm[] = []
  for (let i = 0; i < ordered.length; i++) {
    const p = ordered[i]!
    const prev = i > 0 ? ordered[i - 1] : undefined
    const next = ordered[i + 1]
    // A last dispatch counts only when it was the immediately preceding term's.
    const lastOfPrev =
      prev && p.predecessorLastDispatch?.epoch === prev.epoch ? p.predecessorLastDispatch.at : undefined
    const lastOfThis =
      next && next.predecessorLastDispatch?.epoch === p.epoch ? next.predecessorLastDispatch.at : undefined
    const term: LeadershipTerm = { epoch: p.epoch, boss: p.boss!, start: p.start ?? p.firstAt }
    if (p.dispatchingAt !== undefined) term.dispatchingAt = p.dispatchingAt
    if (p.takeover) term.takeover = p.takeover
    if (p.deposedAt !== undefined) {
      term.end = p.deposedAt
      term.ended = p.deposedReason!
    } else if (next) {
      term.end = lastOfThis ?? next.start ?? next.firstAt
      term.ended = 'crashed'
    }
    if (prev) {
      const prevEnd = prev.deposedAt ?? lastOfPrev ?? p.start ?? p.firstAt
      term.after = prev.deposedAt !== undefined ? prev.deposedReason! : 'crashed'
      const gap = ms(prev.deposedAt ?? crashedAt(lastOfPrev, p), p.dispatchingAt)
      if (gap !== undefined) term.gapBeforeMs = gap
      const leaderless = ms(prevEnd, p.start)
      if (leaderless !== undefined) term.leaderlessMs = leaderless
    } else if (p.epoch === 1) term.after = 'first'
    terms.push(term)
  }
  return terms.reverse()
}
