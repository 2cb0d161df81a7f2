/**
 * The function routes' logic (README "Limits"): which functions the live workers advertise, the
 * limits their modules declare (the strictest where workers disagree, as the boss takes them), an
 * operator's override from the limits store, the limits in force, and the running count from the
 * acting boss's last load report. An override is checked by jobs/limits.ts's parser (400 naming
 * the field) and stored; the boss applies it before its next dispatch.
 */
import { errors } from '../runner/errors.js'
import type { ServiceEntry } from '../runner/index.js'
import {
  effectiveLimits,
  LimitsProblem,
  parseLimitsOverride,
  stricterLimits,
  type FunctionLimits,
  type LimitsOverride,
} from '../jobs/limits.js'
import type { StoredOverride } from '../jobs/limits-store.js'
import { FUNCTION_NAME_PATTERN } from '../jobs/model.js'
import { parseWorkerMeta } from '../jobs/worker-advert.js'
import type { FunctionView } from './function-schemas.js'

/** What the service needs of the cluster and the limits store. */
export interface FunctionPorts {
  /** Live workers' registrations (the 'worker' service). */
  workers(): Promise<ServiceEntry[]>
  /** Running jobs per function from the boss's last fresh report. */
  running(): Record<string, number> | undefined
  getOverride(fn: string): Promise<StoredOverride | undefined>
  listOverrides(): Promise<Map<string, StoredOverride>>
  putOverride(fn: string, o: LimitsOverride): Promise<StoredOverride | undefined>
}

interface Advertised {
  workers: number
  capacity: number
  declared: FunctionLimits | undefined
}

export class FunctionService {
  constructor(private readonly ports: FunctionPorts) {}

  /** Every function advertised or overridden, by name. */
  async list(): Promise<FunctionView[]> {
    const [ads, overrides] = await Promise.all([this.advertised(), this.ports.listOverrides()])
    const running = this.ports.running()
    const names = [...new Set([...ads.keys(), ...overrides.keys()])].sort()
    return names.map((n) => view(n, ads.get(n), overrides.get(n), running))
  }

  /** One function; FUNCTION_NOT_FOUND (404) when no worker advertises it and it has no override. */
  async get(name: string): Promise<FunctionView> {
    const [ads, override] = await Promise.all([this.advertised(), this.ports.getOverride(name)])
    if (!ads.has(name) && !override)
      throw errors.UNKNOWN_FUNCTION(`no worker advertises the function ${JSON.stringify(name)}`)
    return view(name, ads.get(name), override, this.ports.running())
  }

  /** Store `name`'s override (a function no worker advertises yet may get one); `{}` removes it. */
  async setLimits(name: string, body: unknown): Promise<FunctionView> {
    if (!FUNCTION_NAME_PATTERN.test(name))
      throw errors.VALIDATION(`${JSON.stringify(name)} is not a function name`, { details: { field: 'params.name' } })
    let override: LimitsOverride
    try {
      override = parseLimitsOverride(body)
    } catch (err) {
      if (!(err instanceof LimitsProblem)) throw err
      throw errors.VALIDATION(err.message, { details: { field: `body${err.field ? `.${err.field}` : ''}` } })
    }
    const stored = await this.ports.putOverride(name, override)
    const ads = await this.advertised()
    return view(name, ads.get(name), stored, this.ports.running())
  }

  private async advertised(): Promise<Map<string, Advertised>> {
    const out = new Map<string, Advertised>()
    for (const w of await this.ports.workers()) {
      const ad = parseWorkerMeta(w.meta)
      if (!ad) continue
      for (const fn of ad.functions) {
        const a = out.get(fn) ?? { workers: 0, capacity: 0, declared: undefined }
        a.workers++
        a.capacity += ad.capacity
        const l = ad.limits[fn]
        if (l) a.declared = a.declared ? stricterLimits(a.declared, l) : l
        out.set(fn, a)
      }
    }
    return out
  }
}

function view(
  name: string,
  ad: Advertised | undefined,
  stored: StoredOverride | undefined,
  running: Record<string, number> | undefined,
): FunctionView {
  const declared = ad?.declared ?? {}
  return {
    name,
    workers: ad?.workers ?? 0,
    capacity: ad?.capacity ?? 0,
    running: running === undefined ? null : (running[name] ?? 0),
    declared,
    override: stored?.override ?? null,
    overrideUpdatedAt: stored?.updatedAt ?? null,
    limits: effectiveLimits(declared, stored?.override),
  }
}
