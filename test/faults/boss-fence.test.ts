/**
 * Fault: the boss is stopped in the middle of its writes and dispatches, deposed, and its held
 * messages land after its successor took over — the fences must fire end to end (guarantee 1), and
 * the boss must acknowledge no result whose final record is not durable (written by itself, or by
 * the worker that ran a waited job: worker/boss/worker-finals.ts).
 *
 * The boss reaches NATS through a proxy that holds (does not forward) what it publishes on the job
 * store's subjects and to other processes (writes, dispatches, inventories) while everything else
 * flows: results still reach it, but none of its writes becomes durable. It reaches ZooKeeper through
 * a TCP proxy that is then cut, so it is deposed and a successor takes over, adopting the running jobs
 * and applying the results the workers still hold (the old boss never acknowledged them). Once the
 * successor has written every record the old boss tried to write, the held messages are released:
 * JetStream must refuse every write (its compare-and-set meets the successor's newer record) and the
 * workers every dispatch and inventory (an older epoch than they have seen).
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import {
  TestCluster,
  e2eFunctionsDir,
  startClusterPatiently,
  waitForLog,
  waitForNewBoss,
} from '../helpers/processes.js'
import { startNatsHoldProxy } from '../helpers/nats-proxy.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import { watchWire } from '../helpers/fault-observer.js'
import { decodeGroup } from '../../jobs/streams/final-groups.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import { checkBossChange, inFlightWorkload, waitLongsRunning } from '../helpers/in-flight.js'
import { settleWorkload, verifyWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNNERS = 3
const CONCURRENCY = 4
const SLOTS = RUNNERS * CONCURRENCY
const QUEUED = 100
const FINAL = new Set(['succeeded', 'failed', 'cancelled'])
t.setTimeout(900_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

function parse(payload: Buffer): { epoch?: number; state?: string; type?: string } | undefined {
  try {
    return JSON.parse(payload.toString('utf8'))
  } catch {
    return undefined
  }
}

for (let run = 1; run <= 3; run++) {
  const fault = "a deposed boss's held writes and dispatches land after the takeover"
  const bound = 'every held write refused by the store, every held dispatch and inventory by its worker'
  t.test(`a deposed boss's held writes and dispatches land after its successor took over (run ${run})`, (t) =>
    faultRun(t, { fault, run, bound }, async (check) => {
      const cluster = uniqueName('bf')
      const zkProxy = await startTcpProxy(zk.connect)
      const hold = await startNatsHoldProxy(nats.url)
      t.teardown(async () => {
        await zkProxy.close()
        await hold.close()
      })
      const c = new TestCluster({
        zk,
        nats,
        cluster,
        workers: RUNNERS,
        concurrency: CONCURRENCY,
        functionsDir,
        sessionTimeoutMs: SESSION_MS,
      })
      t.teardown(() => c.close())
      const first = c.addWorker({ ZK_CONNECT: zkProxy.address, NATS_URL: hold.url })
      await waitForLog(first, /I am the boss/, 0, 120_000)
      await startClusterPatiently(c, RUNNERS)
      const before = await c.clusterState()
      check.equal(before.boss?.pid, first.pid, 'the proxied worker is the boss')
      const oldEpoch = before.boss!.epoch
      const wire = await watchWire(nats.url, cluster)
      t.teardown(() => wire.stop())
      // The queue is submitted while the writes are held: the boss wakes and dispatches into the slots the
      // held results freed (it reuses a slot only once woken, normally by the durable write).
      let submitQueue!: () => void
      const queueAfter = new Promise<void>((resolve) => (submitQueue = resolve))
      const w = inFlightWorkload(c, { longs: SLOTS, longMs: 3000, stepMs: 300, queued: QUEUED, queueAfter })
      await waitLongsRunning(w, SLOTS)
      // Their `running` records stored first: a write held now would hold back each job's final write
      // behind it (a job's writes are serialised), and the boss would attempt no final write to hold.
      const longIds = w.ids.slice(0, SLOTS)
      const runningStored = (id: string | undefined) =>
        wire.writes.some((x) => id !== undefined && x.running?.includes(id) === true && x.storedSeq !== undefined)
      await waitFor(() => longIds.every(runningStored), {
        timeoutMs: 30_000,
        what: "the long jobs' running records stored",
      })

      // 1. Hold the boss's writes and its messages to other processes.
      // The boss's store writes: batch state records (fenced) and final records (written once).
      const statePrefix = `bosun.${cluster}.state.`
      const donePrefix = `bosun.${cluster}.done.`
      const isWrite = (s: string) => s.startsWith(statePrefix) || s.startsWith(donePrefix)
      const procPrefix = `bosun.${cluster}.proc.`
      const holdN = wire.now()
      hold.hold((s) => isWrite(s) || s.startsWith(procPrefix))
      const heldWrites = () => hold.held.filter((m) => isWrite(m.subject))
      const heldMessages = () => hold.held.filter((m) => m.subject.startsWith(procPrefix))
      const heldDispatches = () => heldMessages().filter((m) => parse(m.payload)?.type === 'worker.dispatch')
      // A final record on its own, or a group of them (jobs/streams/final-groups.ts, as readers decode it).
      const groupPrefix = `${donePrefix}g.`
      const finalsOf = (m: { subject: string; payload: Buffer }): { id: string; state?: string }[] => {
        if (!m.subject.startsWith(donePrefix)) return []
        if (!m.subject.startsWith(groupPrefix)) {
          const p = parse(m.payload)
          return p ? [{ id: m.subject.slice(donePrefix.length), ...(p.state ? { state: p.state } : {}) }] : []
        }
        const [batch = '', part = ''] = m.subject.slice(groupPrefix.length).split('.')
        return decodeGroup(m.payload, batch, Number(part))?.finals ?? []
      }
      const finalsHeld = () =>
        heldWrites().reduce((sum, m) => sum + finalsOf(m).filter((f) => FINAL.has(f.state ?? '')).length, 0)
      await waitFor(() => finalsHeld() >= 2, {
        timeoutMs: 30_000,
        what: 'the boss attempting final writes (held)',
      })
      submitQueue()
      await waitFor(() => heldDispatches().length >= 1, {
        timeoutMs: 30_000,
        what: 'the boss attempting a dispatch (held)',
      }).catch((err: unknown) => {
        const seen = hold.held.map(
          (m) => `${m.subject.replace(`bosun.${cluster}.`, '')} ${parse(m.payload)?.type ?? parse(m.payload)?.state}`,
        )
        t.comment(`held so far: ${seen.join('; ')}`)
        throw err
      })

      // 2. Depose it: cut its ZooKeeper link; a successor takes over.
      const cutAt = Date.now()
      zkProxy.cut()
      const demoted = await waitForLog(first, /^deposed/, cutAt, 30_000)
      const after = await waitForNewBoss(c, before.boss!.id, 30_000)
      const newEpoch = after.boss.epoch
      // As the wire observer names them: a job id (a final record, each of a group's) or state:<batch>.
      const idsIn = (m: { subject: string; payload: Buffer }): string[] => {
        if (!m.subject.startsWith(donePrefix)) return [`state:${m.subject.slice(statePrefix.length)}`]
        return m.subject.startsWith(groupPrefix) ? finalsOf(m).map((f) => f.id) : [m.subject.slice(donePrefix.length)]
      }
      const heldIds = new Set(heldWrites().flatMap(idsIn))
      await waitFor(
        () =>
          [...heldIds].every((id) =>
            wire.writes.some((x) => x.id === id && (x.epoch ?? 0) > oldEpoch && x.storedSeq !== undefined),
          ),
        { timeoutMs: 60_000, what: 'the successor storing every record the old boss tried to write' },
      )
      const byOld = wire.results.filter((r) => r.to === before.boss!.id)
      // A waited job's worker writes its final itself (worker/boss/worker-finals.ts): a result whose final
      // was stored before the old boss answered may be acknowledged without any write of the boss.
      const storedBefore = (id: string, n: number) =>
        wire.writes.some((x) => x.final && x.id === id && x.storedSeq !== undefined && (x.answeredN ?? n) < n)
      const ackedWhileHeld = byOld
        .filter((r) => r.n > holdN)
        .flatMap((r) => (r.acked ?? []).filter((id) => !storedBefore(id, r.answeredN ?? r.n)))

      // 3. Let the held messages land.
      const releaseN = wire.now()
      const released = hold.release()
      const writesHeld = heldWrites().length
      // The records in them (a group of finals is one write of several records, seen one per record).
      const recordsHeld = heldWrites().reduce((n, m) => n + idsIn(m).length, 0)
      const messagesHeld = heldMessages().length
      const landed = () => ({
        writes: wire.writes.filter((x) => x.n >= releaseN && x.epoch === oldEpoch),
        messages: wire.messages.filter((x) => x.n >= releaseN && x.epoch === oldEpoch),
      })
      await waitFor(
        () => {
          const l = landed()
          return (
            l.writes.length >= recordsHeld &&
            l.writes.every((x) => x.answeredN !== undefined) &&
            l.messages.length >= messagesHeld &&
            l.messages.every((x) => x.type === 'worker.abort' || x.answeredN !== undefined)
          )
        },
        { timeoutMs: 30_000, what: 'every released message seen with its answer' },
      )
      const l = landed()
      zkProxy.heal()
      const verdict = verifyWorkload(w, await settleWorkload(c, w, 120_000))

      check.ok(writesHeld > 0, `the old boss was stopped in the middle of writes (${writesHeld} held)`)
      check.ok(
        heldDispatches().length > 0,
        `the old boss was stopped in the middle of dispatches (${heldDispatches().length} held)`,
      )
      check.equal(released, writesHeld + messagesHeld, 'every held message was released after the takeover')
      check.ok(
        heldWrites().every((m) => parse(m.payload)?.epoch === oldEpoch),
        'every held write carries the old epoch',
      )
      check.ok(demoted.time <= Date.parse(after.boss.since), 'the old boss stopped before its successor was elected')
      check.ok(newEpoch > oldEpoch, 'the successor has a greater epoch')
      check.same(
        l.writes.filter((x) => x.storedSeq !== undefined).map((x) => `${x.id} ${x.state} seq ${x.storedSeq}`),
        [],
        'the store refused every write of the deposed boss',
      )
      check.equal(
        l.writes.filter((x) => x.refused !== undefined).length,
        recordsHeld,
        'each released write got a refusal',
      )
      check.same(
        l.messages.filter((x) => x.type !== 'worker.abort' && (x.accepted ?? 0) > 0).map((x) => `${x.type} to ${x.to}`),
        [],
        'the workers refused every dispatch and inventory of the deposed boss',
      )
      check.ok(
        l.messages.filter((x) => x.type !== 'worker.abort').every((x) => /stale/i.test(x.refusal ?? '')),
        `each refusal names the stale epoch (${[...new Set(l.messages.map((x) => x.refusal))].join(',')})`,
      )
      // The workers' refusals are cluster events too (one per kind and epoch per second, counted).
      const told = await waitFor(
        async () => {
          const { events } = (await c.get('/cluster/events?type=dispatch.refused')).body as {
            events: { epoch?: number; data: { what?: string; count?: number; reason?: string } }[]
          }
          const n = events.filter((e) => e.epoch === oldEpoch).reduce((s, e) => s + (e.data.count ?? 0), 0)
          return n >= heldDispatches().length ? events : undefined
        },
        { timeoutMs: 20_000, what: 'dispatch.refused events for every held dispatch' },
      )
      check.ok(
        told.every((e) => e.epoch === oldEpoch && e.data.reason === 'stale-epoch'),
        `the refusals are told as dispatch.refused events of epoch ${oldEpoch} (${told.length} events)`,
      )
      check.same(
        ackedWhileHeld,
        [],
        'while none of its writes was durable the old boss acknowledged no result whose final it had to write',
      )
      check.ok(
        byOld.some((r) => r.n > holdN),
        'workers did send the old boss results while its writes were held',
      )
      checkWorkload(check, verdict, SLOTS + QUEUED)
      const fence = checkBossChange(check, wire, { oldEpoch, changed: true })
      const types = [...new Set(heldMessages().map((m) => parse(m.payload)?.type))].join(',')
      const refusals = [...new Set(l.writes.map((x) => x.refused))].join(',')
      const refused = l.writes.filter((x) => x.refused !== undefined).length
      const notes = [
        `held ${writesHeld} writes (${heldIds.size} jobs) and ${messagesHeld} messages (${types})`,
        `old boss demoted ${demoted.time - cutAt} ms after the cut`,
        `released ${released}: ${refused} writes refused (${refusals}), ${l.messages.length} messages refused`,
        fence,
      ].join('; ')
      return { verdict, measuredMs: null, notes }
    }),
  )
}
