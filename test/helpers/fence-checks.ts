/**
 * Judges a wire log (fault-observer.ts) against guarantee 1 and the acknowledgement rule, at every
 * change of boss epoch the run saw — not only the one the test caused:
 * - per record: no write of an epoch is stored after a stored write of a newer epoch on the same
 *   record (a deposed boss never overwrites its successor's state);
 * - per worker: no dispatch of an epoch is accepted after the worker was sent a message of a newer one;
 * - per acknowledged result: the boss answered "acked" only after JetStream stored a final record of
 *   that job (the boss acknowledges only after the fenced durable write).
 * Plus, per change of epoch, what the new boss did and what the old one still tried (counts for notes).
 */
import type { WireLog } from './fault-observer.js'

export interface EpochChange {
  from: number
  to: number
  /** Arrival number of the first action (write or message) of epoch `to`. */
  firstN: number | undefined
  /** Writes of epoch `to` that JetStream stored. */
  newWrites: number
  newMessages: number
  /** Writes of epoch `from` seen after `to` began: stored (on records `to` had not written) / refused. */
  lateOldStored: number
  lateOldRefused: number
  /** Epoch-carrying messages of `from` seen after `to` began / refused by their worker. */
  lateOldMessages: number
  lateOldMessagesRefused: number
}

export interface FenceReport {
  /** Boss epochs seen on the wire, ascending. */
  epochs: number[]
  changes: EpochChange[]
  /** A stored write of an epoch on a record that already held a stored write of a newer epoch. */
  overwrites: string[]
  /** A dispatch of an epoch accepted by a worker that had been sent a message of a newer epoch. */
  staleAccepted: string[]
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled'])

/** Fencing at every change of epoch in `log`. */
export function fenceReport(log: WireLog): FenceReport {
  const epochs = [
    ...new Set([...log.writes.map((w) => w.epoch ?? 0), ...log.messages.map((m) => m.epoch)].filter((e) => e > 0)),
  ].sort((a, b) => a - b)
  const overwrites: string[] = []
  const byRecord = new Map<string, { epoch: number; seq: number }[]>()
  // A final record is written once (JetStream refuses a second): stored twice is an overwrite.
  const finalsStored = new Map<string, { seq: number; epoch: number | undefined; where: string }>()
  for (const w of log.writes) {
    if (w.storedSeq === undefined || !w.final) continue
    const first = finalsStored.get(w.id)
    const where = `${w.subject ?? '?'} answered on ${w.reply ?? '?'}`
    if (first)
      overwrites.push(
        `job ${w.id}: final record stored twice (seq ${first.seq} by epoch ${first.epoch} on ${first.where}, ` +
          `${w.storedSeq} by epoch ${w.epoch} on ${where})`,
      )
    finalsStored.set(w.id, { seq: w.storedSeq, epoch: w.epoch, where })
  }
  for (const w of log.writes) {
    if (w.storedSeq === undefined || w.final) continue
    let list = byRecord.get(w.id)
    if (!list) byRecord.set(w.id, (list = []))
    list.push({ epoch: w.epoch ?? 0, seq: w.storedSeq })
  }
  for (const [id, list] of byRecord) {
    list.sort((a, b) => a.seq - b.seq)
    let newest = 0
    for (const x of list) {
      if (x.epoch < newest) overwrites.push(`job ${id}: epoch ${x.epoch} stored at seq ${x.seq} after epoch ${newest}`)
      newest = Math.max(newest, x.epoch)
    }
  }
  const staleAccepted: string[] = []
  const newestSent = new Map<string, number>()
  for (const m of [...log.messages].sort((a, b) => a.n - b.n)) {
    const newest = newestSent.get(m.to) ?? 0
    if (m.type === 'worker.dispatch' && m.epoch < newest && (m.accepted ?? 0) > 0) {
      staleAccepted.push(
        `${m.to} accepted ${m.accepted} job(s) from epoch ${m.epoch} after a message of epoch ${newest}`,
      )
    }
    newestSent.set(m.to, Math.max(newest, m.epoch))
  }
  const changes: EpochChange[] = []
  for (let i = 1; i < epochs.length; i++) {
    const from = epochs[i - 1]!
    const to = epochs[i]!
    const firsts = [...log.writes, ...log.messages].filter((x) => x.epoch === to).map((x) => x.n)
    const firstN = firsts.length > 0 ? Math.min(...firsts) : undefined
    const late = <T extends { n: number; epoch?: number }>(xs: T[]) =>
      xs.filter((x) => x.epoch === from && firstN !== undefined && x.n > firstN)
    // Fenced writes only: a final record of the old epoch may still land after the change, but only
    // once (above) and only for a result a worker really produced (its acknowledgement needs the
    // fenced done mask, which the old epoch can no longer write).
    const oldWrites = late(log.writes.filter((w) => !w.final))
    const oldMessages = late(log.messages)
    changes.push({
      from,
      to,
      firstN,
      newWrites: log.writes.filter((w) => w.epoch === to && w.storedSeq !== undefined).length,
      newMessages: log.messages.filter((m) => m.epoch === to).length,
      lateOldStored: oldWrites.filter((w) => w.storedSeq !== undefined).length,
      lateOldRefused: oldWrites.filter((w) => w.refused !== undefined).length,
      lateOldMessages: oldMessages.length,
      lateOldMessagesRefused: oldMessages.filter((m) => (m.refused ?? 0) > 0 && (m.accepted ?? 0) === 0).length,
    })
  }
  return { epochs, changes, overwrites, staleAccepted }
}

/** One line per change of epoch, for notes. */
export function fenceSummary(r: FenceReport): string {
  if (r.changes.length === 0) return `epochs ${r.epochs.join(',') || 'none'}: no change`
  return r.changes
    .map(
      (c) =>
        `epoch ${c.from}→${c.to}: new boss ${c.newWrites} stored writes/${c.newMessages} msgs; ` +
        `old boss after it: ${c.lateOldStored} stored + ${c.lateOldRefused} refused writes, ` +
        `${c.lateOldMessages} msgs (${c.lateOldMessagesRefused} refused)`,
    )
    .join('; ')
}

/**
 * Results acknowledged before JetStream stored a final record of their job: each entry breaks "the
 * boss acknowledges only after the fenced durable write". (On one NATS server the observer sees
 * JetStream's answer to the boss before the boss's own answer to the worker.)
 */
export function earlyAcks(log: WireLog): { acks: number; violations: string[] } {
  const durableAt = new Map<string, number>()
  for (const w of log.writes) {
    if (w.storedSeq === undefined || w.answeredN === undefined || !FINAL.has(w.state ?? '')) continue
    durableAt.set(w.id, Math.min(durableAt.get(w.id) ?? Infinity, w.answeredN))
  }
  let acks = 0
  const violations: string[] = []
  for (const r of log.results) {
    for (const id of r.acked ?? []) {
      acks++
      const at = durableAt.get(id)
      if (at === undefined || at > r.answeredN!) {
        violations.push(`job ${id} acknowledged by ${r.to} before a final record of it was stored`)
      }
    }
  }
  return { acks, violations }
}
