/**
 * ZkElection: the seed's registerCandidate / whereisGlobal (README "Design notes", seed defects 2–4) plus resign. One
 * Candidacy per name this process stands for (candidate.ts) and one LeaderCache for every name anyone
 * asks about (leader-cache.ts). States: `open → closed`.
 *
 * Events: 'leader' (name, LeaderInfo | null) when the leader of a watched name changes;
 * 'watch' (name, type) when a candidacy's predecessor watch fires (herd-effect measurement).
 */
import { EventEmitter } from 'node:events'
import type { CandidateCallbacks, ConnectionState, Election, LeaderInfo } from '../contracts.js'
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'
import { Candidacy, type CandidateState, type ElectionHooks } from './candidate.js'
import { LeaderCache } from './leader-cache.js'
import { assertNodeName, type WatchEventType } from './primitives.js'
import type { Identity } from './records.js'
import type { ZkSession } from './session.js'

export type ElectionState = 'open' | 'closed'

export interface ZkElectionOptions {
  session: ZkSession
  nodeId: string
  host: string
  pid: number
  logger: Logger
  /** Test seams inside a candidacy's evaluation. */
  hooks?: ElectionHooks
}

export class ZkElection extends EventEmitter implements Election {
  private phase: ElectionState = 'open'
  private readonly session: ZkSession
  private readonly who: Identity
  private readonly log: Logger
  private readonly candidacies = new Map<string, Candidacy>()
  private readonly leaders: LeaderCache
  private readonly onState = (state: ConnectionState) => this.handleStateChange(state)
  private readonly onSessionClosed = () => void this.close()

  constructor(private readonly opts: ZkElectionOptions) {
    super()
    assertNodeName('node id', opts.nodeId)
    this.session = opts.session
    this.who = { id: opts.nodeId, host: opts.host, pid: opts.pid }
    this.log = opts.logger.child({ component: 'zk-election' })
    this.leaders = new LeaderCache(this.session, this.log, (name, leader) => this.emit('leader', name, leader))
    this.session.on('state', this.onState)
    this.session.on('closing', this.onSessionClosed)
  }

  get state(): ElectionState {
    return this.phase
  }

  /**
   * Join the election for `name`; resolves with the current leader (possibly this process).
   *
   * Once the arguments are valid the candidacy stays registered until resign(name) or close(): when
   * ZooKeeper fails during the first evaluation (or any later one) it is retried inside, with backoff
   * and on every reconnect, until this process is in the election. The promise then rejects with that
   * failure (the leader is not known yet) but the candidacy goes on; registerCandidate again for the
   * same name rejects with ALREADY_STARTED until resign(name).
   */
  async registerCandidate(name: string, address: string, callbacks: CandidateCallbacks): Promise<LeaderInfo | null> {
    this.assertOpen()
    assertNodeName('election', name)
    if (typeof address !== 'string' || address.length === 0)
      throw errors.VALIDATION('address must be a non-empty string')
    if (typeof callbacks?.onElected !== 'function') throw errors.VALIDATION('callbacks.onElected must be a function')
    if (this.candidacies.has(name)) throw errors.ALREADY_STARTED(`already a candidate for ${name}`)
    const candidacy = new Candidacy({
      session: this.session,
      name,
      address,
      who: this.who,
      callbacks,
      logger: this.log,
      hooks: this.opts.hooks,
      onLeaderHint: () => void this.leaders.refresh(name).catch(() => undefined),
      onWatch: (type: WatchEventType) => this.emit('watch', name, type),
    })
    this.candidacies.set(name, candidacy)
    await candidacy.start() // on failure the candidacy is kept: it retries by itself
    const mine = candidacy.current
    if (mine)
      return { id: this.who.id, address, host: this.who.host, pid: this.who.pid, epoch: mine.epoch, since: mine.since }
    return this.leaders.get(name)
  }

  /** Leave the election for `name` (our node is deleted at once). No-op when not a candidate. */
  async resign(name: string): Promise<void> {
    const candidacy = this.candidacies.get(name)
    if (!candidacy) return
    this.candidacies.delete(name)
    await candidacy.resign('resigned')
  }

  /** The leader of `name` from the watch-invalidated cache (loaded and watched on first use). */
  async whereisGlobal(name: string): Promise<LeaderInfo | null> {
    this.assertOpen()
    assertNodeName('election', name)
    return this.leaders.get(name)
  }

  /** This process's candidacy state for `name` (undefined when not a candidate). */
  candidateState(name: string): CandidateState | undefined {
    return this.candidacies.get(name)?.state
  }

  /** Our election node for `name`, if any (tests). */
  candidateNode(name: string): string | undefined {
    return this.candidacies.get(name)?.nodePath
  }

  /** Resign every candidacy (onDeposed 'closed'), stop watching. Idempotent. */
  async close(): Promise<void> {
    if (this.phase === 'closed') return
    this.phase = 'closed'
    this.session.off('state', this.onState)
    this.session.off('closing', this.onSessionClosed)
    const all = [...this.candidacies.values()]
    this.candidacies.clear()
    await Promise.allSettled(all.map((c) => c.resign('closed')))
    this.leaders.close()
  }

  override on(event: 'leader', listener: (name: string, leader: LeaderInfo | null) => void): this
  override on(event: 'watch', listener: (name: string, type: WatchEventType) => void): this
  override on(event: string, listener: Parameters<EventEmitter['on']>[1]): this {
    return super.on(event, listener)
  }

  override off(event: 'leader', listener: (name: string, leader: LeaderInfo | null) => void): this
  override off(event: 'watch', listener: (name: string, type: WatchEventType) => void): this
  override off(event: string, listener: Parameters<EventEmitter['off']>[1]): this {
    return super.off(event, listener)
  }

  /** The one place the election reacts to the connection: every candidacy first, then the caches. */
  private handleStateChange(state: ConnectionState): void {
    if (this.phase === 'closed') return
    for (const candidacy of this.candidacies.values()) candidacy.handleStateChange(state)
    if (state === 'connected' || state === 'reconnected') this.leaders.resetAll()
  }

  private assertOpen(): void {
    if (this.phase === 'closed') throw errors.CLOSED('election is closed')
  }
}
