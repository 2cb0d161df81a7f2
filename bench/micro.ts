/**
 * `node dist/bench/run.js micro`: the per-call costs behind two choices in the boss's hot path, on
 * this machine's Node, so a reader can check them (and see when a newer V8 makes them moot):
 * - a job record copied with fields added: an object-literal spread (`{ ...job, worker, startedAt }`)
 *   against withFields (jobs/model.ts, Object.assign) — the dispatch and result transitions make
 *   several such copies per job;
 * - a record encoded to UTF-8: TextEncoder against Buffer.from (jobs/streams/records.ts encode,
 *   runner/transport/envelope.ts encodeJson).
 * No servers. Each figure is the median of 5 rounds of 200,000 calls, in µs per call.
 */
import { withFields, type Job } from '../jobs/model.js'
import { summarize, type Row } from './lib/report.js'

const ROUNDS = 5
const CALLS = 200_000

function queuedJob(i: number): Job {
  return {
    id: `01KBZZZZZZZZZZZZZZZZZZZZ${String(i % 100).padStart(2, '0')}-001`,
    function: 'noop',
    state: 'queued',
    attempts: 0,
    maxAttempts: 3,
    payload: { n: i },
    priority: 0,
    timeoutMs: 30_000,
    createdAt: new Date(1_700_000_000_000 + i).toISOString(),
    epoch: 3,
  }
}

/** µs per call of `fn` over CALLS calls; the result is kept so the work is not optimised away. */
function perCall(fn: (i: number) => unknown): number {
  let sink: unknown
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < CALLS; i++) sink = fn(i)
  const us = Number(process.hrtime.bigint() - t0) / 1000 / CALLS
  if (sink === Symbol.for('never')) console.log(sink)
  return us
}

export function microBench(): { rows: Row[]; data: Record<string, unknown> } {
  const jobs = Array.from({ length: 100 }, (_, i) => queuedJob(i))
  const startedAt = new Date().toISOString()
  // A no-op job's final record, as the boss writes it (one history entry).
  const finishedAt = startedAt
  const history = [
    { run: 0, attempt: 1, worker: 'worker-1', epoch: 3, startedAt, finishedAt, outcome: 'succeeded' as const },
  ]
  const final = withFields(jobs[0]!, { state: 'succeeded', attempts: 1, worker: 'worker-1', startedAt, finishedAt })
  const record = JSON.stringify(withFields(final, { result: null, history }))
  const encoder = new TextEncoder()
  const cases: Array<[string, (i: number) => unknown]> = [
    [
      'job record + 2 new fields, object spread',
      (i) => ({ ...jobs[i % 100]!, state: 'running', attempts: 1, worker: 'worker-1', startedAt }),
    ],
    [
      'job record + 2 new fields, withFields (Object.assign)',
      (i) => withFields(jobs[i % 100]!, { state: 'running', attempts: 1, worker: 'worker-1', startedAt }),
    ],
    [`${record.length}-byte JSON to UTF-8, TextEncoder`, () => encoder.encode(record)],
    [`${record.length}-byte JSON to UTF-8, Buffer.from`, () => Buffer.from(record, 'utf8')],
  ]
  const runs = new Map<string, number[]>(cases.map(([name]) => [name, []]))
  for (let r = 0; r < ROUNDS; r++) for (const [name, fn] of cases) runs.get(name)!.push(perCall(fn))
  const rows: Row[] = cases.map(([name]) => ({ name, unit: 'µs/call', summary: summarize(runs.get(name)!) }))
  return { rows, data: { calls: CALLS, rounds: ROUNDS, node: process.version } }
}
