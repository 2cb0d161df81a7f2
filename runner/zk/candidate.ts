/**
 * Candidacy: this process's candidacy for one global name (ZooKeeper's leader-election recipe and
 * Curator's LeaderLatch; README "Design notes", recipes 1–6). States:
 * `joining → following ⇄ fencing → leading`, `suspended` (connection in doubt), `waiting` (session
 * lost, rejoins on the next 'connected'), `closed`.
 *
 * - our node `<base>/elections/<name>/<guid>-n_<seq>` is made by a protected create (recipe 3);
 * - order is the numeric suffix; we watch only our immediate predecessor with getData, and when it is
 *   already gone we read the children again — never rejoin (recipe 2, CURATOR-644/645);
 * - before acting, our node's ephemeralOwner must be our session (recipe 4, CURATOR-696);
 * - leadership is fenced: `<base>/epochs/<name>` is bumped with a versioned setData in one multi with
 *   the epoch written into our node, so epochs strictly increase across leaders (recipe 6);
 * - 'suspended' deposes at once; after 'reconnected' the leader checks again and, still first, takes
 *   a NEW epoch (recipe 5); 'lost' deposes and the next 'connected' rejoins with a new node;
 * - a failed evaluation (the first one included) is retried with backoff until we are in the election
 *   again: only resign()/close() end a candidacy.
 */
import type { CandidateCallbacks, ConnectionState, DeposedReason, Leadership } from '../contracts.js'
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'
import { isUncertain, isZkError, type WatchEventType, type ZkWatcher } from './primitives.js'
import {
  encodeCandidate,
  encodeEpoch,
  isLiveCandidate,
  parseEpoch,
  sortElectionNodes,
  type Identity,
} from './records.js'
import type { ZkSession } from './session.js'
import { SingleFlight } from './single-flight.js'

/** First retry of a failed evaluation; the delay doubles up to MAX_RETRY_MS. */
const RETRY_MS = 250
const MAX_RETRY_MS = 5000

export type CandidateState = 'joining' | 'following' | 'fencing' | 'leading' | 'suspended' | 'waiting' | 'closed'

/** Test seams between the steps of an evaluation (e.g. delete a node from another session). */
export interface ElectionHooks {
  /** Before our node is created (first evaluation after (re)joining). */
  beforeJoin?(name: string): void | Promise<void>
  beforeWatchPredecessor?(name: string, predecessor: string): void | Promise<void>
  beforeOwnershipCheck?(name: string, node: string): void | Promise<void>
}

export interface CandidacyOptions {
  session: ZkSession
  name: string
  address: string
  who: Identity
  callbacks: CandidateCallbacks
  logger: Logger
  hooks?: ElectionHooks | undefined
  /** Who leads may have changed (the leader cache re-reads). */
  onLeaderHint(): void
  /** Our predecessor watch fired (herd-effect measurement). */
  onWatch(type: WatchEventType): void
}

class LeadershipImpl implements Leadership {
  private readonly controller = new AbortController()
  constructor(
    readonly name: string,
    readonly epoch: number,
    readonly since: string,
    private readonly current: () => boolean,
  ) {}
  get signal(): AbortSignal {
    return this.controller.signal
  }
  isCurrent(): boolean {
    return !this.controller.signal.aborted && this.current()
  }
  end(reason: DeposedReason): void {
    this.controller.abort(reason)
  }
}

export class Candidacy {
  private phase: CandidateState = 'joining'
  private node: string | undefined
  private nodeGen = -1
  private staleNode: string | undefined
  private leadership: LeadershipImpl | undefined
  private readonly evaluator: SingleFlight
  private readonly dir: string
  private readonly epochPath: string
  private readonly log: Logger
  private readonly onPredecessor: ZkWatcher = (ev) => {
    this.opts.onWatch(ev.type)
    this.evaluator.kick()
  }
  private readonly onOwnNode: ZkWatcher = () => this.evaluator.kick()

  constructor(private readonly opts: CandidacyOptions) {
    this.dir = opts.session.path('elections', opts.name)
    this.epochPath = opts.session.path('epochs', opts.name)
    this.log = opts.logger.child({ election: opts.name })
    // Retried on every failure, a lost session included (the next pass waits for a connected one):
    // only resign()/close() or a closed session end the candidacy.
    this.evaluator = new SingleFlight(() => this.evaluate(), {
      retryMs: RETRY_MS,
      maxRetryMs: MAX_RETRY_MS,
      shouldRetry: () => !this.closed() && opts.session.state !== 'closing' && opts.session.state !== 'closed',
      onError: (err) => this.log.warn({ err }, 'election step failed; retrying'),
    })
  }

  get state(): CandidateState {
    return this.phase
  }

  /** Our election node's path, when we have one. */
  get nodePath(): string | undefined {
    return this.node
  }

  /** The current leadership, if this process leads. */
  get current(): Leadership | undefined {
    return this.leadership?.isCurrent() ? this.leadership : undefined
  }

  /**
   * Join and run the first evaluation (leader fenced, or predecessor watched). When ZooKeeper fails
   * during it, the candidacy is not given up: the evaluation is retried with backoff (and on every
   * reconnect) until this process is in the election or resign() is called. The promise still rejects
   * with that first failure.
   */
  async start(): Promise<void> {
    try {
      await this.evaluator.run()
    } catch (err) {
      this.evaluator.retry(err)
      throw err
    }
  }

  /** The one place the candidacy reacts to the connection. */
  handleStateChange(state: ConnectionState): void {
    if (this.phase === 'closed') return
    switch (state) {
      case 'suspended':
        this.depose('suspended')
        if (this.phase !== 'waiting') this.phase = 'suspended'
        return
      case 'lost':
        this.depose('lost')
        if (this.node) this.staleNode = this.node
        this.node = undefined
        this.phase = 'waiting'
        return
      case 'reconnected':
      case 'connected':
        this.evaluator.kick()
    }
  }

  /** Leave: depose, delete our node at once (followers take over in milliseconds). Idempotent. */
  async resign(reason: 'resigned' | 'closed'): Promise<void> {
    if (this.phase === 'closed') return
    this.phase = 'closed'
    this.evaluator.close()
    this.depose(reason)
    const { node, nodeGen, staleNode } = this
    this.node = undefined
    this.staleNode = undefined
    const timeoutMs = Math.min(this.opts.session.requestTimeoutMs, 2000)
    await Promise.allSettled([
      node === undefined ? undefined : this.removeOwnNode(node, nodeGen, timeoutMs),
      staleNode === undefined ? undefined : this.opts.session.removeIfExists(staleNode, -1, { timeoutMs }),
    ])
    this.opts.onLeaderHint()
  }

  /**
   * Delete our node of session `gen`. When the answer is lost (connection blip) while that session
   * lives, the node would stay as a live candidate that every later candidate — our own next
   * candidacy included — waits behind: the delete is retried in the background (with backoff) until
   * it is answered or the session is gone (then the server deletes the node itself).
   */
  private async removeOwnNode(path: string, gen: number, timeoutMs: number): Promise<void> {
    const { session } = this.opts
    const attempt = () => session.removeIfExists(path, -1, { generation: gen, timeoutMs })
    try {
      return await attempt()
    } catch (err) {
      if (!isUncertain(err)) return
      this.log.warn({ err, node: path }, 'could not delete our election node; retrying in the background')
    }
    void (async () => {
      for (let delay = RETRY_MS; ; delay = Math.min(2 * delay, MAX_RETRY_MS)) {
        await new Promise((resolve) => setTimeout(resolve, delay).unref())
        try {
          await attempt()
          this.log.info({ node: path }, 'deleted our election node')
          this.opts.onLeaderHint()
          return
        } catch (err) {
          if (!isUncertain(err)) return // session gone or closed: the server deletes the node
        }
      }
    })()
  }

  private async evaluate(): Promise<void> {
    const { session } = this.opts
    if (this.phase === 'closed' || session.state !== 'connected') return // suspended: wait for 'reconnected'
    const gen = session.generation
    const pin = { generation: gen }
    if (this.node && this.nodeGen !== gen) {
      this.staleNode = this.node
      this.node = undefined
    }
    if (!this.node) await this.join(gen)
    if (this.closed() || !this.node) return
    const order = sortElectionNodes((await session.getChildren(this.dir, undefined, pin)).children)
    if (this.closed() || !this.node) return
    const index = order.indexOf(this.node.slice(this.dir.length + 1))
    if (index < 0) {
      this.log.warn({ node: this.node }, 'our election node is gone; joining again')
      return this.abandonNode()
    }
    // The nearest predecessor that is a live candidate is the one to watch; none → we lead.
    for (let i = index - 1; i >= 0; i--) {
      const predecessor = `${this.dir}/${order[i]}`
      await this.opts.hooks?.beforeWatchPredecessor?.(this.opts.name, predecessor)
      try {
        const { data, stat } = await session.getData(predecessor, this.onPredecessor, pin)
        if (isLiveCandidate(data, stat.ephemeralOwner)) {
          this.depose('superseded')
          this.phase = 'following'
          return
        }
        this.log.warn({ node: predecessor }, 'skipping an election node that is not a live candidate')
      } catch (err) {
        if (!isZkError(err, 'NO_NODE')) throw err
        return this.evaluator.repeat() // already gone: read the children again (never rejoin)
      }
    }
    return this.lead(gen)
  }

  private async join(gen: number): Promise<void> {
    const { session } = this.opts
    const pin = { generation: gen }
    this.phase = 'joining'
    if (this.staleNode) {
      // Our node from a previous session, if the server still has it: delete it for a fast failover.
      const stale = this.staleNode
      this.staleNode = undefined
      await session
        .removeIfExists(stale, -1, pin)
        .catch((err) => this.log.debug({ err, node: stale }, 'could not delete our stale node'))
    }
    await this.opts.hooks?.beforeJoin?.(this.opts.name)
    const node = await session.createProtected(this.dir, encodeCandidate(this.opts.who, this.opts.address), pin)
    if (this.closed()) {
      await session.removeIfExists(node).catch(() => undefined)
      return
    }
    this.node = node
    this.nodeGen = gen
    this.log.debug({ node }, 'joined')
  }

  private async lead(gen: number): Promise<void> {
    const { session, name } = this.opts
    const node = this.node!
    const pin = { generation: gen }
    await this.opts.hooks?.beforeOwnershipCheck?.(name, node)
    const stat = await session.exists(node, undefined, pin)
    if (!stat) return this.abandonNode()
    if (stat.ephemeralOwner !== session.sessionId) {
      // CURATOR-696: the node at our path belongs to another session: never act on it.
      this.log.warn(
        { node, owner: stat.ephemeralOwner, sessionId: session.sessionId },
        'first election node is not ours; not acting',
      )
      return this.abandonNode()
    }
    if (this.leadership?.isCurrent()) return
    if (this.leadership) this.depose('suspended') // not confirmed any more: never keep a doubtful leadership
    this.phase = 'fencing'
    const fenced = await this.fence(node, gen)
    if (!fenced) return this.abandonNode()
    const stillOurs = await session.exists(node, this.onOwnNode, pin) // deletion of our node deposes us
    if (!stillOurs) return this.abandonNode()
    if (this.phase !== 'fencing' || gen !== session.generation || !session.isConfirmed()) {
      if (this.phase === 'fencing') this.evaluator.repeat()
      return
    }
    this.phase = 'leading'
    const leadership = new LeadershipImpl(
      name,
      fenced.epoch,
      fenced.since,
      () => this.phase === 'leading' && session.generation === gen && session.isConfirmed(),
    )
    this.leadership = leadership
    this.log.info({ epoch: fenced.epoch }, 'elected')
    this.opts.onLeaderHint()
    try {
      const result = this.opts.callbacks.onElected(leadership)
      if (result instanceof Promise) result.catch((err) => this.log.error({ err }, 'onElected failed'))
    } catch (err) {
      this.log.error({ err }, 'onElected failed')
    }
  }

  /** Bump the epoch counter and write it into our node, atomically (versioned setData in a multi). */
  private async fence(node: string, gen: number): Promise<{ epoch: number; since: string } | undefined> {
    const { session } = this.opts
    const pin = { generation: gen }
    for (let attempt = 0; attempt < 20; attempt++) {
      let data: Buffer
      let version: number
      try {
        const got = await session.getData(this.epochPath, undefined, pin)
        data = got.data
        version = got.stat.version
      } catch (err) {
        if (!isZkError(err, 'NO_NODE')) throw err
        await session.mkdirp(this.epochPath, pin)
        continue
      }
      const stored = parseEpoch(data)
      if (typeof stored === 'string')
        this.log.warn({ reason: stored }, 'invalid epoch counter data; continuing from its version')
      // Every bump adds one to both the data and the version: the larger one is a safe base.
      const epoch = Math.max(typeof stored === 'number' ? stored : 0, version) + 1
      const since = new Date().toISOString()
      try {
        await session.multi(
          [
            { op: 'setData', path: this.epochPath, data: encodeEpoch(epoch), version },
            { op: 'setData', path: node, data: encodeCandidate(this.opts.who, this.opts.address, { epoch, since }) },
          ],
          pin,
        )
        return { epoch, since }
      } catch (err) {
        if (isZkError(err, 'BAD_VERSION') || isUncertain(err)) continue
        if (isZkError(err, 'NO_NODE')) return undefined
        throw err
      }
    }
    throw errors.ZK(`could not bump the fencing epoch of ${this.opts.name}`)
  }

  /** The phase, read through a call (it changes across awaits). */
  private closed(): boolean {
    return this.phase === 'closed'
  }

  /** Our node is gone or not ours: stop leading and join again with a new node. */
  private abandonNode(): void {
    this.depose('superseded')
    this.node = undefined
    if (this.phase !== 'closed') this.evaluator.repeat()
  }

  /** Abort the leadership's signal first, then tell the callback. */
  private depose(reason: DeposedReason): void {
    const leadership = this.leadership
    if (!leadership) return
    this.leadership = undefined
    leadership.end(reason)
    this.log.info({ reason, epoch: leadership.epoch }, 'deposed')
    try {
      this.opts.callbacks.onDeposed?.(reason, leadership.epoch)
    } catch (err) {
      this.log.error({ err }, 'onDeposed failed')
    }
    this.opts.onLeaderHint()
  }
}
