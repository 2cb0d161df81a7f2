/**
 * A running attempt's ctx.progress value and ctx.log lines, kept in the LIVE stream (one message per
 * job, jobs/live.ts). Only attempts that report pay anything: a channel is a few fields until its
 * first call, and an attempt that never calls progress or log writes and reads nothing.
 *
 * Throttle: while the attempt runs, at most one write per second per job — the first change after a
 * write schedules the next one a second after that write began (at once when there was none), and
 * later changes ride along. When the attempt ends, one last write if anything changed since the last
 * one, made before the result goes to the boss (so a job seen finished has its lines complete).
 *
 * Fencing: every write is a compare-and-set on the subject's last sequence. A later attempt (attempt
 * > 1 or run > 0) reads the stored message once before its first write and keeps the lines of
 * earlier attempts in front of its own; on a conflict it reads again, and if the stored message
 * belongs to a newer (run, attempt) this one stops writing. Writes are best effort: a failed one is
 * logged and the attempt's result is never held back for more than the final write's timeout.
 */
import type { Logger } from '../../runner/logger.js'
import { compareAttempts, lineBytes, makeLine, type LiveLine, type LiveRecord } from '../../jobs/live.js'
import type { StoredLive } from '../../jobs/streams/live-store.js'
import type { LiveChannel } from '../executor/outcomes.js'

/** The LIVE stream, as the recorder uses it (jobs/streams/live-store.ts). */
export interface LivePort {
  read(jobId: string): Promise<StoredLive | null>
  write(record: LiveRecord, expectSeq: number): Promise<number | 'conflict'>
}

export interface LiveLimits {
  /** JOB_LOG_MAX_LINES: lines kept per job. */
  maxLines: number
  /** JOB_LOG_MAX_BYTES: encoded bytes of the kept lines per job. */
  maxBytes: number
  /** Least time between two writes of one job while it runs. @defaultValue 1000 */
  intervalMs?: number
}

/** Longest wait for the final write before the result goes anyway. */
export const FINAL_WRITE_TIMEOUT_MS = 1000
/** Compare-and-set conflicts one write resolves (re-reading each time) before it gives up. */
const MAX_CONFLICTS = 3

export class LiveRecorder {
  readonly intervalMs: number
  constructor(
    readonly port: LivePort,
    readonly limits: LiveLimits,
    readonly log: Logger,
  ) {
    this.intervalMs = limits.intervalMs ?? 1000
  }

  /** The channel of one attempt (nothing is read or written until the function reports). */
  channel(jobId: string, run: number, attempt: number): LiveAttempt {
    return new LiveAttempt(this, jobId, run, attempt)
  }
}

interface OwnLine {
  line: LiveLine
  bytes: number
}

/** Shared until an attempt logs or reads earlier lines: an attempt that never reports allocates no array. */
const NONE: OwnLine[] = []

export class LiveAttempt implements LiveChannel {
  /** The function called progress or log at least once. */
  touched = false
  /** The last progress value (see hasProgress). */
  progressValue: unknown
  hasProgress = false
  private own = NONE
  private ownBytes = 0
  private ownTruncated = false
  /** Lines of earlier attempts, as last read from the stream (with their sizes), and whether that tail was cut. */
  private prefix = NONE
  private prefixTruncated = false
  /** Subject sequence the next write expects (0: no message); undefined until known. */
  private seq: number | undefined
  private dirty = false
  private dropped = false
  private finishing = false
  private timer: NodeJS.Timeout | undefined
  private writing: Promise<void> | undefined
  private lastWriteAt = -Infinity
  constructor(
    private readonly rec: LiveRecorder,
    readonly jobId: string,
    readonly run: number,
    readonly attempt: number,
  ) {}

  progress(value: unknown): void {
    this.progressValue = value
    this.hasProgress = true
    this.changed()
  }

  log(level: string, msg: string, fields?: unknown): void {
    const line = makeLine(level, msg, this.attempt, this.run, fields)
    const bytes = lineBytes(line)
    if (this.own === NONE) this.own = []
    this.own.push({ line, bytes })
    this.ownBytes += bytes
    const { maxLines, maxBytes } = this.rec.limits
    while (this.own.length > maxLines || (this.ownBytes > maxBytes && this.own.length > 0)) {
      this.ownBytes -= this.own.shift()!.bytes
      this.ownTruncated = true
    }
    this.changed()
  }

  /** The attempt ended: the last write if anything changed, within `timeoutMs`. Never rejects. */
  async finish(timeoutMs = FINAL_WRITE_TIMEOUT_MS): Promise<void> {
    this.finishing = true
    clearTimeout(this.timer)
    this.timer = undefined
    const work = (async () => {
      if (this.writing) await this.writing
      if (this.dirty) await this.write()
    })()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))
    await Promise.race([work, late])
    clearTimeout(timer)
  }

  private changed(): void {
    this.touched = true
    this.dirty = true
    if (!this.finishing && !this.dropped) this.schedule()
  }

  private schedule(): void {
    if (this.timer !== undefined || this.writing !== undefined) return
    const delay = Math.max(0, this.lastWriteAt + this.rec.intervalMs - Date.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.finishing) return
      this.writing = this.write().finally(() => {
        this.writing = undefined
        if (this.dirty && !this.finishing && !this.dropped) this.schedule()
      })
    }, delay)
    this.timer.unref()
  }

  /** One write of the current state (re-reading on conflicts); never rejects. */
  private async write(): Promise<void> {
    if (this.dropped) return
    this.dirty = false
    this.lastWriteAt = Date.now()
    try {
      for (let conflicts = 0; conflicts <= MAX_CONFLICTS; conflicts++) {
        if (this.seq === undefined) await this.load(conflicts > 0)
        if (this.dropped) return
        const seq = await this.rec.port.write(this.record(), this.seq!)
        if (seq !== 'conflict') {
          this.seq = seq
          return
        }
        this.seq = undefined
      }
      this.rec.log.warn({ jobId: this.jobId, attempt: this.attempt }, 'live record kept changing under us: not written')
    } catch (err) {
      this.dirty = true // the next change (or the final write) tries again
      this.rec.log.warn({ err, jobId: this.jobId }, 'live record (progress, log lines) not written')
    }
  }

  /** Learn the stored message: its sequence, and the lines of earlier attempts to keep in front. */
  private async load(afterConflict: boolean): Promise<void> {
    if (this.attempt === 1 && this.run === 0 && !afterConflict) {
      this.seq = 0 // a first attempt of a first run: nothing before it to keep (a conflict reads)
      return
    }
    const stored = await this.rec.port.read(this.jobId)
    this.seq = stored?.seq ?? 0
    const r = stored?.record
    if (r === undefined) return
    if (compareAttempts(r, this) > 0) {
      this.dropped = true
      this.rec.log.info(
        { jobId: this.jobId, attempt: this.attempt, run: this.run, newer: { attempt: r.attempt, run: r.run } },
        'a newer attempt of this job writes its live record: this one stops',
      )
      return
    }
    this.prefix = r.lines.filter((l) => compareAttempts(l, this) < 0).map((line) => ({ line, bytes: lineBytes(line) }))
    this.prefixTruncated = r.truncated
  }

  /** The message to store: earlier attempts' tail, then ours, cut to the limits from the front. */
  private record(): LiveRecord {
    const { maxLines, maxBytes } = this.rec.limits
    let lines = this.own.length
    let bytes = this.ownBytes
    let from = this.prefix.length
    while (from > 0 && lines < maxLines && bytes + this.prefix[from - 1]!.bytes <= maxBytes) {
      from--
      lines++
      bytes += this.prefix[from]!.bytes
    }
    const kept = [...this.prefix.slice(from).map((l) => l.line), ...this.own.map((l) => l.line)]
    const rec: LiveRecord = {
      v: 1,
      jobId: this.jobId,
      run: this.run,
      attempt: this.attempt,
      lines: kept,
      truncated: this.ownTruncated || this.prefixTruncated || from > 0,
    }
    if (this.hasProgress) rec.progress = this.progressValue
    return rec
  }
}
