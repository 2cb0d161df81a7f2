/**
 * Benches that compare configurations of one cluster ("sides": metrics on/off, limits or none)
 * in one sitting: every run measures every side, rotating which goes first so the machine's drift
 * hits all; figures are compared as ratios of medians.
 */
import { median } from './report.js'

export interface SideRun<S extends string> {
  run: number
  side: S
}

/** `runs` rounds over `sides` (side i first in round i), each record made then measured in turn. */
export async function alternateSides<S extends string, R extends SideRun<S>>(
  sides: readonly S[],
  runs: number,
  make: (run: number, side: S) => R,
  measure: (rec: R) => Promise<void>,
  records: R[] = [],
): Promise<R[]> {
  for (let run = 1; run <= runs; run++) {
    for (let i = 0; i < sides.length; i++) {
      const rec = make(run, sides[(i + run - 1) % sides.length]!)
      records.push(rec)
      await measure(rec)
    }
  }
  return records
}

/** One figure of every run of a side (NaN where the run failed to measure it). */
export function sideValues<R extends SideRun<string>>(
  records: readonly R[],
  side: R['side'],
  figure: (r: R) => number | undefined,
): number[] {
  return records.filter((r) => r.side === side).map((r) => figure(r) ?? Number.NaN)
}

/** median(a) / median(b) over the finite values. */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.filter(Number.isFinite)) / median(b.filter(Number.isFinite))
}
