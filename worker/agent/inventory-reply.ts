/**
 * A worker's answer to a new boss's inventory (jobs/protocol.ts): what it runs — always whole, at
 * most its capacity — and which results it still holds, by job id in order and one page at a time,
 * so a reply stays far below the NATS max payload whatever the backlog.
 */
import { INVENTORY_PAGE, type AttemptResult, type InventoryReply, type RunningAttempt } from '../../jobs/protocol.js'

export function inventoryReply(o: {
  worker: string
  running: Iterable<RunningAttempt>
  held: readonly AttemptResult[]
  /** Only held results with a job id after this one (the previous page's `next`). */
  after: string | undefined
  /** The last dispatch taken (epoch, Date.now()); reported to a boss newer than its epoch. */
  lastDispatch: { epoch: number; at: number } | undefined
  epoch: number
}): InventoryReply {
  const running = [...o.running].map(({ jobId, attempt, epoch, startedAt }) => ({ jobId, attempt, epoch, startedAt }))
  const held = o.held
    .map((r) => ({ jobId: r.jobId, attempt: r.attempt }))
    .filter((h) => o.after === undefined || h.jobId > o.after)
    .sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0))
  const page = held.slice(0, INVENTORY_PAGE)
  const reply: InventoryReply = { worker: o.worker, running, held: page }
  if (held.length > page.length) reply.next = page[page.length - 1]!.jobId
  const last = o.lastDispatch
  if (last && last.epoch < o.epoch) reply.lastDispatch = { epoch: last.epoch, at: new Date(last.at).toISOString() }
  return reply
}
