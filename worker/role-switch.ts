/**
 * The role of a worker process — worker (advertises the 'worker' service and takes dispatches) or
 * boss (runs a boss term, takes no jobs) — and the switches between them as leadership comes and
 * goes, including a rejoin (a term found a newer boss: resign, then candidate again).
 *
 * Two rules keep the boss from ever running jobs:
 * - Leadership is a flag set synchronously in `elected()` and cleared in `deposed()` — not "a boss
 *   term is active", which is false while a new term is still starting. Nothing registers this
 *   process as a worker or lets it accept dispatches while the flag is set.
 * - Role changes are strictly ordered: one queue, one step at a time, and each step acts on the state
 *   when it runs (not when it was queued). A boss term starts only after the worker registration is
 *   withdrawn, so the term never finds its own process among the workers.
 */
import type { DeposedReason, LeaderInfo, Leadership, Logger } from '../runner/index.js'

/** What the switch drives: the agent, the registry, the boss role and the election (narrow). */
export interface RolePorts {
  /** Start or stop taking dispatches (the worker agent). */
  setAccepting(accepting: boolean): void
  /** Advertise this process under the 'worker' service. */
  registerWorker(): Promise<void>
  /** Withdraw the 'worker' registration. */
  unregisterWorker(): Promise<void>
  /** Begin a boss term for this leadership (it ends when the leadership's signal aborts). */
  startBoss(leadership: Leadership): void
  /** Stop acting as the boss at once. */
  stopBoss(): void
  /** Leave the boss election (deposes this process if it leads). */
  resign(): Promise<void>
  /** Join the boss election; resolves with the leader then. */
  candidate(): Promise<LeaderInfo | null>
  logger: Logger
}

/** `starting` until start(); `stopped` after stop(), for good. */
export type RoleState = 'starting' | 'worker' | 'boss' | 'stopped'

export class RoleSwitch {
  /** Held from onElected to onDeposed, synchronously: the one source of "this process leads". */
  private leadership: Leadership | undefined
  /** The leadership whose boss term was started (one term per leadership). */
  private termFor: Leadership | undefined
  /** Our view of the 'worker' registration (what the last completed step left). */
  private registered = false
  private state: RoleState = 'starting'
  private queue: Promise<void> = Promise.resolve()

  constructor(private readonly p: RolePorts) {}

  /** The role now (the leadership flag wins over a registration not yet withdrawn). */
  get role(): RoleState {
    if (this.state === 'stopped' || this.state === 'starting') return this.state
    return this.leadership ? 'boss' : 'worker'
  }

  /** This process holds the boss leadership now. */
  get isLeader(): boolean {
    return this.leadership !== undefined
  }

  /** Become a worker (unless elected meanwhile), then join the election; resolves with the leader then. */
  async start(): Promise<LeaderInfo | null> {
    if (this.state !== 'starting') throw new Error(`RoleSwitch.start() in state ${this.state}`)
    this.state = 'worker'
    await this.sync()
    return this.p.candidate()
  }

  /** The election's onElected: stop accepting now; withdraw the registration, then start the term. */
  elected(leadership: Leadership): void {
    this.leadership = leadership
    this.p.setAccepting(false)
    if (this.state === 'stopped') return
    this.p.logger.info({ epoch: leadership.epoch }, 'I am the boss: no more jobs for me, dispatching instead')
    void this.sync()
  }

  /** The election's onDeposed: stop the term now; become a worker again (unless closing). */
  deposed(reason: DeposedReason): void {
    this.leadership = undefined
    this.p.stopBoss()
    if (this.state === 'stopped' || reason === 'closed') return
    void this.sync()
  }

  /** A boss term found a newer boss: give up the candidacy and join again at the back. */
  rejoin(reason: string): void {
    if (this.state === 'stopped') return
    this.p.logger.warn({ reason }, 'resigning and rejoining the election')
    void this.enqueue(async () => {
      await this.p.resign()
      if (this.state !== 'stopped') await this.p.candidate()
    })
  }

  /** Shutting down: take no more work and make no more role changes (znodes are the caller's). */
  stop(): void {
    this.state = 'stopped'
    this.p.setAccepting(false)
  }

  /** Resolves once every role change queued so far has run (tests). */
  settled(): Promise<void> {
    return this.queue
  }

  /** Queue one step that brings registration, accepting and the boss term in line with the state. */
  private sync(): Promise<void> {
    return this.enqueue(() => this.apply())
  }

  private async apply(): Promise<void> {
    if (this.state === 'stopped') return
    const leadership = this.leadership
    if (leadership) {
      this.p.setAccepting(false)
      if (this.registered) {
        try {
          await this.p.unregisterWorker()
        } catch (err) {
          // The boss must not wait on this: the agent refuses dispatches (not accepting) meanwhile.
          this.p.logger.warn({ err }, 'could not withdraw the worker registration; starting the boss term anyway')
        } finally {
          this.registered = false
        }
      }
      // Still ours after the await, and no term for it yet: start one.
      if (this.leadership === leadership && !leadership.signal.aborted && this.termFor !== leadership) {
        this.termFor = leadership
        this.p.startBoss(leadership)
      }
      return
    }
    // Accept before the registration is visible (a boss may dispatch the moment it sees it);
    // elected() during the await turns accepting off again synchronously, and queues the withdrawal.
    this.p.setAccepting(true)
    if (!this.registered) {
      // Set before the await: the registry keeps it as desired state even if this write fails
      // (written again on reconnect), so a later election must withdraw it.
      this.registered = true
      await this.p.registerWorker()
    }
  }

  private enqueue(step: () => Promise<unknown>): Promise<void> {
    this.queue = this.queue.then(step).then(
      () => undefined,
      (err: unknown) => this.p.logger.error({ err }, 'role change failed'),
    )
    return this.queue
  }
}
