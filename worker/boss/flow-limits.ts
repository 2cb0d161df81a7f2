/**
 * The limits in force during one boss term (README "Limits"): what the workers' modules declare
 * (fleet.ts) under what operators set through the API (jobs/limits-store.ts), put into the flow
 * gate whenever either changes. The term reads every stored override before its first dispatch
 * (`start`), so a limit set before a boss change holds from the new boss's first job.
 */
import type { Logger } from '../../runner/index.js'
import { effectiveLimits, sameLimits, type LimitsOverride } from '../../jobs/limits.js'
import type { LimitsSource } from '../../jobs/limits-store.js'
import type { Fleet } from './fleet.js'
import type { FlowGate } from './flow-gate.js'

export class FlowLimits {
  private readonly overrides = new Map<string, LimitsOverride>()
  private stopWatch: (() => void) | undefined
  private stopped = false

  constructor(
    private readonly gate: FlowGate,
    private readonly fleet: Fleet,
    private readonly source: LimitsSource | undefined,
    private readonly log: Logger,
    /** The limits of `fn` changed: its set-aside keys may start again, the pump should look. */
    private readonly onChange: (fn: string) => void,
  ) {}

  /** Read every stored override and follow changes. Rejects when the store cannot be read. */
  async start(): Promise<void> {
    if (!this.source) return this.refresh()
    const stop = await this.source.watch((fn, o) => {
      if (o === undefined) this.overrides.delete(fn)
      else this.overrides.set(fn, o)
      this.refresh()
    })
    if (this.stopped) stop()
    else this.stopWatch = stop
    this.refresh()
  }

  /** Idempotent. */
  stop(): void {
    this.stopped = true
    this.stopWatch?.()
    this.stopWatch = undefined
  }

  /** Recompute every function's limits (declared or overridden ones changed). */
  refresh(): void {
    if (this.stopped) return
    const declared = this.fleet.declaredLimits()
    const fns = new Set([...declared.keys(), ...this.overrides.keys()])
    for (const fn of fns) {
      const next = effectiveLimits(declared.get(fn), this.overrides.get(fn))
      const before = this.gate.limitsOf(fn)
      if (sameLimits(before, next)) continue
      this.gate.setLimits(fn, next)
      this.log.info({ function: fn, limits: next }, 'limits in force')
      this.onChange(fn)
    }
    // A function neither declared nor overridden any more: no limits.
    for (const fn of this.gate.limitedFunctions())
      if (!fns.has(fn)) {
        this.gate.setLimits(fn, undefined)
        this.onChange(fn)
      }
  }
}
