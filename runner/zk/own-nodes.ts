/**
 * OwnNodes: the ephemeral znodes this process keeps while its session lives (the registry's
 * registrations and node announcement). Each path has a desired content; it is written, then read
 * back with a data watch. When the node is deleted or changed by someone else (without ZK ACLs
 * anyone may; an operator, a bug, a restore), the watch fires and the node is written again at
 * once — and again on every new session and reconnect. A node held by another session is replaced
 * by a delete + create in one multi (watchers never see the path empty; never a blind create that
 * could leave an orphan). forget() (unregister on purpose) drops the desired state first, so a
 * deletion it causes is never undone. States: `open → closed`.
 */
import { performance } from 'node:perf_hooks'
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'
import { KeyedSerial } from './keyed-serial.js'
import { isSessionGone, isUncertain, isZkError, type ZkStat, type ZkWatcher } from './primitives.js'
import type { ZkSession } from './session.js'
import { SingleFlight } from './single-flight.js'

/** What a watched read found at one of our paths (null: no node). */
interface Seen {
  data: Buffer
  stat: ZkStat
}

interface Entry {
  data: Buffer
  /** Re-checks the node after a watch event or reconnect; retries failures with backoff. */
  readonly check: SingleFlight
  /** A watch event arrived since the last check (a mismatch then means someone else changed it). */
  changed: boolean
  /** When (performance.now()) and on which of our sessions we last replaced another session's node here. */
  tookBack: { at: number; session: string } | undefined
}

/** Write/read rounds before a write gives up (someone keeps changing the node meanwhile). */
const MAX_ROUNDS = 6
const RETRY_MS = 250
const MAX_RETRY_MS = 5000
/**
 * Within one session of ours, a node of another session is replaced at most once in this window: two
 * live processes with the same node id (a misconfiguration) would otherwise take the path from each
 * other in a tight loop. (A new session replacing the node of our previous one is never held back.)
 */
const TAKE_BACK_WINDOW_MS = 10_000

export class OwnNodes {
  private readonly entries = new Map<string, Entry>()
  private readonly serial = new KeyedSerial()
  private closed = false
  private readonly onEvent: ZkWatcher = (ev) => {
    const entry = this.entries.get(ev.path)
    if (!entry) return
    entry.changed = true
    entry.check.kick()
  }

  constructor(
    private readonly session: ZkSession,
    private readonly log: Logger,
  ) {}

  /**
   * Make our ephemeral node at `path` hold `data` and keep it so. If the session it was written on is
   * lost meanwhile, it resolves: the node is written on the next session's 'connected'. Other failures
   * reject, and the write is retried in the background all the same (the desired state is kept).
   */
  async set(path: string, data: Buffer): Promise<void> {
    if (this.closed) throw errors.CLOSED('registry is closed')
    const entry = this.entries.get(path)
    if (entry) entry.data = data
    else this.entries.set(path, { data, check: this.newCheck(path), changed: false, tookBack: undefined })
    try {
      await this.serial.run(path, () => this.ensure(path, entry ? 'update' : 'create'))
    } catch (err) {
      this.entries.get(path)?.check.retry(err)
      if (!isSessionGone(err) || this.closed) throw err
      this.log.warn({ path }, 'session lost during a registration write; it is re-written on the next session')
    }
  }

  /** Stop keeping `path` and delete it (a deletion that is never undone). */
  async forget(path: string): Promise<void> {
    this.entries.get(path)?.check.close()
    this.entries.delete(path)
    await this.serial.run(path, () => this.session.removeIfExists(path))
  }

  /** After a new session or a reconnect: check (and rewrite where needed) every node. */
  restoreAll(): void {
    for (const entry of this.entries.values()) entry.check.kick()
  }

  /** Stop keeping anything; delete every node (best effort, bounded). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const paths = [...this.entries.keys()]
    for (const entry of this.entries.values()) entry.check.close()
    this.entries.clear()
    const timeoutMs = Math.min(this.session.requestTimeoutMs, 2000)
    await Promise.allSettled(paths.map((p) => this.session.removeIfExists(p, -1, { timeoutMs })))
  }

  private newCheck(path: string): SingleFlight {
    return new SingleFlight(() => this.serial.run(path, () => this.ensure(path, 'check')), {
      retryMs: RETRY_MS,
      maxRetryMs: MAX_RETRY_MS,
      shouldRetry: () => !this.closed && this.session.state !== 'closing' && this.session.state !== 'closed',
      onError: (err) => this.log.warn({ err, path }, 'could not restore our znode; retrying'),
    })
  }

  /**
   * Write until a watched read shows the node ours with our data (the read arms the watch). 'create'
   * (a fresh registration) tries a create first; 'update' and 'check' (after a watch event or a
   * reconnect) read first.
   */
  private async ensure(path: string, mode: 'create' | 'update' | 'check'): Promise<void> {
    let seen: Seen | null | undefined // undefined: not known (a create is safe to try: NODE_EXISTS tells)
    if (mode !== 'create') {
      const entry = this.entries.get(path)
      if (!entry || this.closed) return
      if (mode === 'check' && this.session.state !== 'connected') return // 'connected'/'reconnected' restore all
      const byEvent = mode === 'check' && entry.changed
      entry.changed = false
      seen = await this.read(path, this.session.generation)
      if (byEvent && seen !== undefined && (seen === null || !this.isOurs(path, seen))) {
        const owner = seen?.stat.ephemeralOwner
        this.log.warn({ path, owner }, 'our znode was deleted or changed by someone else; restoring it')
      }
    }
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const want = this.entries.get(path)
      if (!want || this.closed) return
      if (seen && this.isOurs(path, seen)) return
      const gen = this.session.generation
      if (seen && seen.stat.ephemeralOwner !== this.session.sessionId) this.takingBack(path, want, seen)
      await this.write(path, want.data, seen, gen)
      seen = await this.read(path, gen)
    }
    throw errors.ZK(`could not register ${path}`)
  }

  /** About to replace another session's node: refuse (retried with backoff) if we just did. */
  private takingBack(path: string, entry: Entry, seen: Seen): void {
    const now = performance.now()
    const last = entry.tookBack
    if (last && last.session === this.session.sessionId && now - last.at < TAKE_BACK_WINDOW_MS) {
      const owner = seen.stat.ephemeralOwner
      throw errors.ZK(`${path} is taken again by session ${owner}: another process with our node id?`, {
        details: { path, owner },
      })
    }
    entry.tookBack = { at: now, session: this.session.sessionId }
  }

  private isOurs(path: string, seen: Seen): boolean {
    const want = this.entries.get(path)
    return seen.stat.ephemeralOwner === this.session.sessionId && want !== undefined && seen.data.equals(want.data)
  }

  /** The node with a data watch; null when absent; undefined when the answer was lost. */
  private async read(path: string, gen: number): Promise<Seen | null | undefined> {
    try {
      return await this.session.getData(path, this.onEvent, { generation: gen })
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return null
      if (isUncertain(err)) return undefined
      throw err
    }
  }

  /**
   * One write from what was seen: create when absent (or unknown), setData when ours, and when another
   * session holds the path, delete + create in one multi. Answers that mean "it changed meanwhile" or
   * "the outcome is unknown" return: the next read tells.
   */
  private async write(path: string, data: Buffer, seen: Seen | null | undefined, gen: number): Promise<void> {
    const pin = { generation: gen }
    try {
      if (!seen) {
        await this.session.create(path, data, 'ephemeral', pin)
      } else if (seen.stat.ephemeralOwner === this.session.sessionId) {
        await this.session.setData(path, data, seen.stat.version, pin)
      } else {
        this.log.warn({ path, owner: seen.stat.ephemeralOwner }, 'replacing a registration left by another session')
        await this.session.multi(
          [
            { op: 'remove', path, version: seen.stat.version },
            { op: 'create', path, data, mode: 'ephemeral' },
          ],
          pin,
        )
      }
    } catch (err) {
      if (isZkError(err, 'NO_NODE') && !seen) return this.session.mkdirp(path.slice(0, path.lastIndexOf('/')), pin)
      const changed = isZkError(err, 'NO_NODE') || isZkError(err, 'NODE_EXISTS') || isZkError(err, 'BAD_VERSION')
      if (!changed && !isUncertain(err)) throw err
    }
  }
}
