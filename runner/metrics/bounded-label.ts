/**
 * Bounded label values for Prometheus metrics. Every distinct label value is a time series kept by
 * the process and by Prometheus forever, so a label fed from the outside (a function name, a reason
 * string) must not grow without bound: values outside an allow-list, or past a cap of distinct
 * values, are folded into one `other` value. Job ids are never labels.
 */

/** The value every refused or overflowing label value is folded into. */
export const OTHER = 'other'

/** At most this many distinct function names per metric; further ones count as `other`. */
export const MAX_FUNCTION_LABELS = 200

export interface BoundedLabelOptions {
  /** Distinct values kept (`other` excluded); the rest fold into `other`. */
  max: number
  /** When set, only these values are kept (the rest fold into `other`). */
  allowed?: Iterable<string>
}

/** Maps raw values to label values, keeping at most `max` distinct ones. */
export class BoundedLabel {
  private readonly kept = new Set<string>()
  private readonly allowed: ReadonlySet<string> | undefined
  private readonly max: number

  constructor(opts: BoundedLabelOptions) {
    if (!Number.isSafeInteger(opts.max) || opts.max < 0) throw new RangeError(`max must be an integer ≥ 0: ${opts.max}`)
    this.max = opts.max
    this.allowed = opts.allowed === undefined ? undefined : new Set(opts.allowed)
  }

  /** The label value for `raw`: itself when allowed and within the cap, else `other`. */
  value(raw: string): string {
    if (this.kept.has(raw)) return raw
    if (raw === OTHER || (this.allowed !== undefined && !this.allowed.has(raw)) || this.kept.size >= this.max)
      return OTHER
    this.kept.add(raw)
    return raw
  }

  /** Distinct values kept so far. */
  get size(): number {
    return this.kept.size
  }
}
