/**
 * Pairs a waited job's announced final record (the boss sends it on `events.finishing` as it sends
 * the write, worker/boss/finished-notices.ts) with JetStream's acknowledgement of that write, which
 * the API hears itself on the write's reply subject (`acks.<boss>.<n>`, jobs/streams/io.ts). Either
 * may arrive first. A record is answered with only once an acknowledgement without error arrives on
 * its own `ack` subject: the store holds it then. An error (another final of the run stands, a
 * fenced or failed write) drops the record; the boss's finished notice answers later, as before.
 *
 * Unpaired entries (an acknowledgement of another API's job, a record whose acknowledgement was
 * lost) are kept for one to two sweeps, and at most `maxEntries` of each kind: this is bounded
 * memory, never the only way a waiter is answered.
 */
import type { Job } from '../jobs/model.js'

/** The acknowledgement JetStream sends for a publish: stored (`seq`) or refused (`error`). */
export function ackStored(data: Uint8Array): boolean {
  let ack: unknown
  try {
    ack = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'))
  } catch {
    return false
  }
  if (typeof ack !== 'object' || ack === null) return false
  const { stream, seq, error } = ack as { stream?: unknown; seq?: unknown; error?: unknown }
  return error === undefined && typeof stream === 'string' && stream !== '' && Number.isSafeInteger(seq)
}

export class FinalPairs {
  private records = new Map<string, Job>()
  private olderRecords = new Map<string, Job>()
  private acks = new Map<string, boolean>()
  private olderAcks = new Map<string, boolean>()

  constructor(private readonly maxEntries = 100_000) {}

  /** An announced record whose write is acknowledged on `ack`: the record when its acknowledgement said stored. */
  record(ack: string, job: Job): Job | undefined {
    const stored = take(ack, this.acks, this.olderAcks)
    if (stored !== undefined) return stored ? job : undefined
    if (this.records.size >= this.maxEntries) this.sweep()
    this.records.set(ack, job)
    return undefined
  }

  /** The acknowledgement heard on `ack`: the record announced for it, when there is one and it is stored. */
  acked(ack: string, stored: boolean): Job | undefined {
    const job = take(ack, this.records, this.olderRecords)
    if (job !== undefined) return stored ? job : undefined
    if (this.acks.size >= this.maxEntries) this.sweep()
    this.acks.set(ack, stored)
    return undefined
  }

  /** Forget what waited unpaired since the sweep before the last one. */
  sweep(): void {
    this.olderRecords = this.records
    this.records = new Map()
    this.olderAcks = this.acks
    this.acks = new Map()
  }

  get size(): number {
    return this.records.size + this.olderRecords.size + this.acks.size + this.olderAcks.size
  }
}

/** The entry of `key` in the newer or the older generation, removed from it. */
function take<V>(key: string, newer: Map<string, V>, older: Map<string, V>): V | undefined {
  for (const m of [newer, older]) {
    const v = m.get(key)
    if (v !== undefined) {
      m.delete(key)
      return v
    }
  }
  return undefined
}
