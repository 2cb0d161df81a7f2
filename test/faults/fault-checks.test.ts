/**
 * The fault suite's own checks, on synthetic records: each one fails on the defect it is there to
 * catch (a lost job, a result of another submission, a wrongly failed attempt, a re-run no fault
 * explains, an old epoch stored over a newer one, a stale dispatch accepted, an acknowledgement before
 * the durable write), so a fault run that passes has really been checked.
 */
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { killedWorkerExplains, verifyWorkload, type JobView, type Workload } from '../helpers/workload.js'
import { earlyAcks, fenceReport } from '../helpers/fence-checks.js'
import { takeoverEvidence } from '../helpers/in-flight.js'
import type { WireLog } from '../helpers/fault-observer.js'

const dir = mkdtempSync(join(tmpdir(), 'fault-checks-'))
let files = 0

/** A workload of `ids` (submission n = index) whose jobs recorded `starts` / `ends` lines. */
function workload(ids: string[], starts: string[], ends: string[] = [], jobMs = 200): Workload {
  const runsFile = join(dir, `runs-${++files}.txt`)
  const endsFile = join(dir, `ends-${files}.txt`)
  writeFileSync(runsFile, starts.map((l) => `${l}\n`).join(''))
  writeFileSync(endsFile, ends.map((l) => `${l}\n`).join(''))
  return {
    name: 'w',
    runsFile,
    endsFile,
    ids,
    acknowledged: [...ids],
    submitted: ids.length,
    done: Promise.resolve(),
    jobMs: () => jobMs,
  }
}

const ok = (id: string, n: number, attempts = 1): JobView => ({
  id,
  state: 'succeeded',
  attempts,
  result: { done: id, n },
})
const settled = (...jobs: JobView[]) => ({ jobs: new Map(jobs.map((j) => [j.id, j])) })

t.test('a clean run passes every check', async (t) => {
  const w = workload(['A', 'B'], ['A 1 10 1000 0', 'B 1 11 1000 1'])
  const v = verifyWorkload(w, settled(ok('A', 0), ok('B', 1)))
  t.same([v.lost, v.noStart, v.wrongResult, v.wrongAttempts, v.unexplained, v.explained], [[], [], [], [], [], []])
  t.equal(v.succeeded, 2)
  t.equal(v.strays, 0)
})

t.test('each defect is caught', async (t) => {
  const w = workload(
    ['A', 'B', 'C', 'D', 'E'],
    [
      'B 1 10 1000 1',
      'C 1 10 1000 0', // the start line of another submission
      'D 1 10 1000 3',
      'E 1 10 1000 4',
      'E 1 11 1100 4', // started twice, both workers alive
      'X 1 10 1000 9', // a job the API never acknowledged
    ],
  )
  const v = verifyWorkload(
    w,
    settled(
      { id: 'A', state: 'failed', attempts: 3 }, // acknowledged, not succeeded
      ok('B', 1),
      ok('C', 2),
      ok('D', 3, 2), // one start, yet attempts 2: a wrongly failed attempt hidden by maxAttempts
      ok('E', 4),
    ),
  )
  t.same(v.lost, ['A'])
  t.same(v.noStart, [], 'B, C, D, E recorded starts')
  t.same(v.wrongResult, ['C'])
  t.match(v.wrongAttempts, [/^D: attempts 2/])
  t.match(v.unexplained, [/^E \(n 4\): no fault explains a second start/])
  t.equal(v.strays, 1)
  const noStart = verifyWorkload(workload(['A'], []), settled(ok('A', 0)))
  t.same(noStart.noStart, ['A'], 'success reported for a job that never started')
  const wrongN = verifyWorkload(
    workload(['A'], ['A 1 10 1000 0']),
    settled({ ...ok('A', 0), result: { done: 'A', n: 7 } }),
  )
  t.same(wrongN.wrongResult, ['A'], 'a result carrying another submission index')
})

t.test('a killed worker explains only re-runs of jobs it had not long finished', async (t) => {
  const killedAt = 10_000
  const w = workload(
    ['A', 'B', 'C'],
    [
      'A 1 10 9900 0', // on the victim, 100 ms before the kill: still running
      'A 1 11 12000 0',
      'B 1 10 5000 1', // on the victim 5 s before the kill (200 ms job): finished and delivered long before
      'B 1 11 12000 1',
      'C 1 12 9900 2', // on a live worker
      'C 1 11 12000 2',
    ],
  )
  const v = verifyWorkload(
    w,
    settled(ok('A', 0), ok('B', 1), ok('C', 2)),
    killedWorkerExplains(w, new Set([10]), { sentAt: killedAt, diedAt: killedAt + 20 }, 1000),
  )
  t.same(v.explained, ['A'])
  t.match(v.unexplained, [/^B .*started 5000 ms before the kill/, /^C .*pid 12, which was not killed/])
})

t.test("a kill is a window: a start between the signal and the exit is the victim's, one after is not", async (t) => {
  const kill = { sentAt: 10_000, diedAt: 10_015 }
  const w = workload(
    ['A', 'B'],
    [
      'A 1 10 10007 0', // the test was descheduled after reading the clock: the victim still started A
      'A 1 11 12000 0',
      'B 1 10 10030 1', // after the test saw the victim exit: not the victim's doing
      'B 1 11 12000 1',
    ],
  )
  const v = verifyWorkload(w, settled(ok('A', 0), ok('B', 1)), killedWorkerExplains(w, new Set([10]), kill, 1000))
  t.same(v.explained, ['A'])
  t.match(v.unexplained, [/^B .*started on pid 10 after it died/])
})

const wire = (over: Partial<WireLog>): WireLog => ({
  writes: [],
  messages: [],
  results: [],
  now: () => 0,
  stop: async () => undefined,
  ...over,
})

t.test('fencing: an older epoch stored over a newer one, a stale dispatch accepted', async (t) => {
  const log = wire({
    writes: [
      { n: 1, at: 0, id: 'A', epoch: 1, state: 'running', storedSeq: 10 },
      { n: 2, at: 0, id: 'A', epoch: 2, state: 'running', storedSeq: 11 },
      { n: 3, at: 0, id: 'A', epoch: 1, state: 'succeeded', storedSeq: 12 }, // overwrote epoch 2
      { n: 4, at: 0, id: 'B', epoch: 1, state: 'running', refused: 'wrong last sequence' },
    ],
    messages: [
      { n: 5, at: 0, type: 'worker.inventory', from: 'b2', to: 'w1', epoch: 2, jobs: 0, accepted: 1, refused: 0 },
      { n: 6, at: 0, type: 'worker.dispatch', from: 'b1', to: 'w1', epoch: 1, jobs: 1, accepted: 1, refused: 0 },
      { n: 7, at: 0, type: 'worker.dispatch', from: 'b1', to: 'w2', epoch: 1, jobs: 1, accepted: 1, refused: 0 },
    ],
  })
  const r = fenceReport(log)
  t.same(r.epochs, [1, 2])
  t.match(r.overwrites, [/job A: epoch 1 stored at seq 12 after epoch 2/])
  t.match(r.staleAccepted, [/w1 accepted 1 job\(s\) from epoch 1 after a message of epoch 2/])
  t.equal(r.staleAccepted.length, 1, 'w2 had not been sent epoch 2 yet: its dispatch is not judged stale')
  t.match(r.changes, [{ from: 1, to: 2, newWrites: 1, lateOldStored: 1, lateOldRefused: 1 }])
  t.same(fenceReport(wire({ writes: [log.writes[0]!, log.writes[1]!] })).overwrites, [], 'in order: no overwrite')
})

t.test('an acknowledgement before the durable final write is caught', async (t) => {
  const log = wire({
    writes: [
      { n: 1, at: 0, id: 'A', epoch: 1, state: 'succeeded', storedSeq: 5, answeredN: 2 },
      { n: 3, at: 0, id: 'B', epoch: 1, state: 'succeeded', storedSeq: 6, answeredN: 9 },
      { n: 4, at: 0, id: 'C', epoch: 1, state: 'succeeded', refused: 'wrong last sequence', answeredN: 5 },
    ],
    results: [{ n: 6, at: 0, to: 'w1', jobIds: ['A', 'B', 'C'], answeredN: 7, acked: ['A', 'B', 'C'] }],
  })
  const r = earlyAcks(log)
  t.equal(r.acks, 3)
  t.same(r.violations, [
    'job B acknowledged by w1 before a final record of it was stored',
    'job C acknowledged by w1 before a final record of it was stored',
  ])
})

t.test('takeover evidence: running across the takeover, ended while no boss acted', async (t) => {
  const w = workload(
    ['A', 'B', 'C', 'D'],
    ['A 1 10 100 0', 'B 1 10 100 1', 'C 1 10 100 2', 'D 1 10 2000 3'],
    ['A 1 10 900 0 ok', 'B 1 10 1500 1 ok', 'C 1 10 5000 2 ok', 'D 1 10 5000 3 ok'],
  )
  // fault at 1000, the old boss stopped at 1000, the new one dispatching from 3000
  t.same(takeoverEvidence(w, 1000, 1000, 3000), { adoptedRunning: ['C'], heldResults: ['B'] })
})
