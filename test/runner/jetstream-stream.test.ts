/**
 * ensureStream (runner/jetstream-stream.ts) on a real nats-server: the one way the job store's and
 * the cluster events' streams come to exist. Created once by concurrent first starts; a process
 * that owns the configuration brings the age limit and duplicate window in line, one that only
 * binds changes nothing.
 */
import t from 'tap'
import { jetstreamManager, StorageType } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { ensureStream } from '../../runner/jetstream-stream.js'
import { silentLogger } from '../../runner/logger.js'
import { startNats, uniqueName } from '../helpers/servers.js'

const nats = await startNats()
const nc = await connect({ servers: nats.url })
t.teardown(async () => {
  await nc.close()
  await nats.close()
})
const jsm = await jetstreamManager(nc)
const ns = (ms: number) => ms * 1_000_000
const spec = (name: string, ageMs: number) => ({
  name,
  subjects: [`${name}.>`],
  storage: StorageType.File,
  num_replicas: 1,
  max_age: ns(ageMs),
  duplicate_window: ns(Math.min(ageMs, 60_000)),
})

t.test('concurrent first starts create the stream once and all succeed', async (t) => {
  const name = uniqueName('s')
  await Promise.all(Array.from({ length: 5 }, () => ensureStream(jsm, spec(name, 3_600_000), silentLogger(), true)))
  const info = await jsm.streams.info(name)
  t.equal(info.config.max_age, ns(3_600_000))
  t.equal((await jsm.streams.names().next()).filter((n) => n === name).length, 1)
})

t.test('six processes creating the same streams at once all succeed (no "subjects overlap")', async (t) => {
  const conns = await Promise.all(Array.from({ length: 6 }, () => connect({ servers: nats.url })))
  t.teardown(async () => {
    for (const c of conns) await c.close()
  })
  const managers = await Promise.all(conns.map((c) => jetstreamManager(c)))
  const failures: string[] = []
  for (let round = 0; round < 40; round++) {
    const names = ['submit', 'state', 'done', 'index', 'idem'].map((n) => `${uniqueName('r')}_${n}`)
    await Promise.all(
      managers.map(async (m) => {
        for (const name of names)
          await ensureStream(m, spec(name, 3_600_000), silentLogger(), true).catch((e: Error) =>
            failures.push(e.message),
          )
      }),
    )
  }
  t.same(failures, [], 'every concurrent create bound to the stream another made')
})

t.test('binding without apply changes nothing; with apply the age limit follows the configuration', async (t) => {
  const name = uniqueName('s')
  await ensureStream(jsm, spec(name, 3_600_000), silentLogger(), true)
  await ensureStream(jsm, spec(name, 600_000), silentLogger(), false)
  t.equal((await jsm.streams.info(name)).config.max_age, ns(3_600_000), 'a binding process leaves it')
  await ensureStream(jsm, spec(name, 600_000), silentLogger(), true)
  const cfg = (await jsm.streams.info(name)).config
  t.equal(cfg.max_age, ns(600_000), 'the owner updates the age limit')
  t.equal(cfg.duplicate_window, ns(60_000), 'and the duplicate window')
  t.same(cfg.subjects, [`${name}.>`], 'the rest of the stream is kept')
})
