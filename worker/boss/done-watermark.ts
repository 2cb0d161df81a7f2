/**
 * How far the DONE stream is settled in this term: the largest sequence W such that every final
 * record at or below W is in its batch's durable done mask (or its batch is closed). A final record
 * is written before its mask; a record whose mask is not durable yet holds W below it. A write in
 * flight holds W below every sequence it can get — above every one already known stored, since
 * JetStream numbers a stream's messages in the order it stores them. Pure bookkeeping: the boss
 * writes W as its checkpoint (checkpoint.ts), and a new boss reads DONE after it.
 */

/** One final record on its way: from its write until its done mask is durable. */
export interface Hold {
  /** Its sequence once known; until then the lowest it can have. */
  floor: number
  known: boolean
}

export class DoneWatermark {
  private stored: number
  private readonly holds = new Set<Hold>()

  /** `start`: every record up to it is settled (what the previous checkpoint and this term's read cover). */
  constructor(start: number) {
    this.stored = start
  }

  /** A final record is about to be written (or is known unsettled at `seq`). */
  hold(seq?: number): Hold {
    const h: Hold = seq === undefined ? { floor: this.stored + 1, known: false } : { floor: seq, known: true }
    if (seq !== undefined) this.stored = Math.max(this.stored, seq)
    this.holds.add(h)
    return h
  }

  /** Everything up to `seq` is settled or held (the end of a read of DONE). */
  advance(seq: number): void {
    this.stored = Math.max(this.stored, seq)
  }

  /** Its record is stored at `seq` (or one stood there already). */
  landed(h: Hold, seq: number): void {
    h.floor = seq
    h.known = true
    this.stored = Math.max(this.stored, seq)
  }

  /** Its done mask is durable (or the write was abandoned before it was stored). */
  release(h: Hold): void {
    this.holds.delete(h)
  }

  /** Every final record at or below this is settled. */
  get value(): number {
    let w = this.stored
    for (const h of this.holds) w = Math.min(w, h.floor - 1)
    return w
  }

  get pending(): number {
    return this.holds.size
  }
}
