import t from 'tap'
import { Kvm } from '@nats-io/kv'
import { jetstream } from '@nats-io/jetstream'
import { errors, type BosunError } from '../../runner/errors.js'
import { JobStore } from '../../jobs/store.js'
import { idemKey } from '../../jobs/store-codec.js'
import type { Job } from '../../jobs/model.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { collectWatch, logger, makeJob, natsConn, openStore } from './store-helpers.js'

t.test('job store on one nats-server', async (t) => {
  const nats = await startNats()
  t.teardown(() => nats.close())

  t.test('open creates a file-backed bucket per cluster; a second open binds to it', async (t) => {
    const nc = await natsConn(t, nats.url)
    const cluster = uniqueName('c')
    const [a, b] = await Promise.all([JobStore.open({ nc, cluster, logger }), JobStore.open({ nc, cluster, logger })])
    t.teardown(() => Promise.all([a.close(), b.close()]))
    t.equal(a.bucket, `bosun_${cluster}_jobs`)
    t.equal(a.stream, `KV_bosun_${cluster}_jobs`)
    const status = await (await new Kvm(jetstream(nc)).open(a.bucket)).status()
    t.equal(status.storage, 'file')
    t.equal(status.history, 1)
    t.equal(status.replicas, 1)
    const job = makeJob()
    await a.create(job)
    t.same((await b.get(job.id))?.job, job, 'both see the same bucket')
    await t.rejects(JobStore.open({ nc, cluster: 'bad.name', logger }), { code: errors.CONFIG.code })
  })

  t.test('create, get, idempotent create, bad input', async (t) => {
    const store = await openStore(t, await natsConn(t, nats.url))
    const job = makeJob({ payload: { hello: 'world' } })
    const res = await store.create(job)
    t.equal(res.created, true)
    t.ok(res.revision > 0)
    t.same(res.job, job)
    t.same(await store.get(job.id), { job, revision: res.revision })
    const again = await store.create({ ...job, payload: 'different' })
    t.equal(again.created, false, 'second create of the same id does not overwrite')
    t.same(again.job, job, 'returns the stored record')
    t.equal(again.revision, res.revision)
    t.equal(await store.get('no-such-job'), null)
    t.equal(await store.get('bad id with spaces'), null, 'an id that cannot be a key is simply absent')
    t.equal(await store.get('a.b'), null)
    await t.rejects(store.create(makeJob({ id: 'has.dot' })), { code: errors.VALIDATION.code })
    await t.rejects(store.create(makeJob({ payload: 'x'.repeat(1024 * 1024) })), { code: errors.BODY_TOO_LARGE.code })
  })

  t.test(
    'createMany: pipelined, results in order, duplicates reported, a bad item rejects the batch untouched',
    async (t) => {
      const store = await openStore(t, await natsConn(t, nats.url))
      const existing = makeJob()
      await store.create(existing)
      const jobs = Array.from({ length: 300 }, () => makeJob())
      jobs.splice(150, 0, { ...existing, payload: 'ignored' })
      const results = await store.createMany(jobs)
      t.equal(results.length, jobs.length)
      t.ok(
        results.every((r, i) => r.job.id === jobs[i]!.id),
        'results in input order',
      )
      t.same(results.map((r) => r.created).filter((c) => !c).length, 1)
      t.equal(results[150]!.created, false)
      t.same(results[150]!.job, existing)
      const stored = await Promise.all(jobs.map((j) => store.get(j.id)))
      t.ok(
        stored.every((s, i) => s !== null && s.revision === results[i]!.revision),
        'every job readable at its revision',
      )

      const batch = [makeJob(), makeJob(), makeJob({ id: 'not valid' })]
      const err = (await store.createMany(batch).catch((e: unknown) => e)) as BosunError
      t.equal(err.code, errors.VALIDATION.code)
      t.equal(err.details?.index, 2)
      t.equal(await store.get(batch[0]!.id), null, 'nothing of the rejected batch was written')
      t.same(await store.createMany([]), [])
    },
  )

  t.test('idempotency keys: one winner, even when claimed concurrently', async (t) => {
    const store = await openStore(t, await natsConn(t, nats.url))
    t.equal(await store.claimIdempotencyKey('order-42', 'jobA'), 'jobA')
    t.equal(await store.claimIdempotencyKey('order-42', 'jobB'), 'jobA')
    t.equal(await store.claimIdempotencyKey('order-42', 'jobA'), 'jobA')
    const weird = 'any string at all: spaces, dots . * > and ünïcödé'
    const winners = await Promise.all(Array.from({ length: 20 }, (_, i) => store.claimIdempotencyKey(weird, `job${i}`)))
    t.equal(new Set(winners).size, 1, 'every concurrent claimant sees the same winner')
    await t.rejects(store.claimIdempotencyKey('k', 'bad id'), { code: errors.VALIDATION.code })
  })

  t.test('mutate: applies, skips the read with a known revision, retries CAS conflicts', async (t) => {
    const nc = await natsConn(t, nats.url)
    const store = await openStore(t, nc)
    const job = makeJob()
    const created = await store.create(job)
    const m1 = await store.mutate(job.id, 1, (cur) => ({
      ...cur,
      state: 'running',
      attempts: cur.attempts + 1,
      worker: 'w1',
    }))
    t.ok(m1 && m1.changed)
    t.equal(m1!.job.state, 'running')
    t.equal(m1!.job.epoch, 1, 'stamped with the writer epoch')
    t.ok(m1!.revision > created.revision)
    t.same(await store.get(job.id), { job: m1!.job, revision: m1!.revision })

    // hot path: known revision and record
    const m2 = await store.mutate(job.id, 1, (cur) => ({ ...cur, attempts: cur.attempts + 1 }), m1!)
    t.equal(m2!.job.attempts, 2)
    // stale known revision: the write conflicts, the store re-reads and applies fn to the fresh record
    const m3 = await store.mutate(job.id, 1, (cur) => ({ ...cur, attempts: cur.attempts + 1 }), {
      revision: m1!.revision,
      current: m1!.job,
    })
    t.equal(m3!.job.attempts, 3, 'applied on top of the newest record, not the stale one')
    // no change
    const same = await store.mutate(job.id, 1, () => null)
    t.same(same, { job: m3!.job, revision: m3!.revision, changed: false })
    t.equal(await store.mutate('missing', 1, (c) => c), null)
    await t.rejects(
      store.mutate(job.id, -1, (c) => c),
      { code: errors.VALIDATION.code },
    )

    // two stores (two connections) increment concurrently: no lost update
    const other = await JobStore.open({
      nc: await natsConn(t, nats.url),
      cluster: store.bucket.slice('bosun_'.length, -'_jobs'.length),
      logger,
    })
    t.teardown(() => other.close())
    const inc = (s: JobStore) => s.mutate(job.id, 1, (cur) => ({ ...cur, attempts: cur.attempts + 1 }))
    await Promise.all(Array.from({ length: 40 }, (_, i) => inc(i % 2 ? store : other)))
    t.equal((await store.get(job.id))!.job.attempts, 43, 'every concurrent increment counted once')
  })

  t.test('fencing: a writer with an older epoch never overwrites a newer one', async (t) => {
    const store = await openStore(t, await natsConn(t, nats.url))
    const job = makeJob()
    const created = await store.create(job)
    const byOne = await store.mutate(job.id, 1, (cur) => ({ ...cur, state: 'running', worker: 'old-boss-worker' }))
    const byTwo = await store.mutate(job.id, 2, ({ worker: _w, ...cur }) => ({ ...cur, state: 'queued' }))
    t.equal(byTwo!.job.epoch, 2)
    let called = false
    const stale = await store
      .mutate(job.id, 1, (cur) => ((called = true), { ...cur, state: 'succeeded' }))
      .catch((e: unknown) => e)
    t.equal((stale as BosunError).code, errors.STALE_EPOCH.code, 'read path: STALE_EPOCH')
    t.match((stale as BosunError).details, { storedEpoch: 2, epoch: 1 })
    t.equal(called, false, 'fn is not even called')
    // hot path with a stale known record (epoch 1 at an old revision): conflict, re-read, rejected
    const staleKnown = await store
      .mutate(job.id, 1, (cur) => ({ ...cur, state: 'failed' }), byOne!)
      .catch((e: unknown) => e)
    t.equal((staleKnown as BosunError).code, errors.STALE_EPOCH.code, 'known-revision path: STALE_EPOCH')
    const after = await store.get(job.id)
    t.same(after, { job: byTwo!.job, revision: byTwo!.revision }, 'record unchanged')
    // the same epoch and newer ones may write; the API's epoch-0 record was overwritten by epoch 1
    t.ok(created.job.epoch === 0)
    const byThree = await store.mutate(job.id, 3, (cur) => ({ ...cur, state: 'succeeded' }))
    t.equal(byThree!.job.epoch, 3)
  })

  t.test('watch: every record, then initial-load-done, then live changes', async (t) => {
    const store = await openStore(t, await natsConn(t, nats.url))
    const before = [makeJob(), makeJob(), makeJob()]
    await store.createMany(before)
    const { state, stop } = collectWatch(store)
    t.teardown(stop)
    await waitFor(() => state.loaded, { what: 'initial load' })
    t.equal(state.loadedAt, 3, 'initial load done after exactly the existing records')
    t.same(new Set(state.entries.map((e) => e.id)), new Set(before.map((j) => j.id)))
    const live = makeJob()
    await store.create(live)
    const mut = await store.mutate(before[0]!.id, 1, (c) => ({ ...c, state: 'running' }))
    await waitFor(() => state.entries.length === 5, { what: 'live updates' })
    t.same(state.entries[3], { id: live.id, job: live, revision: state.entries[3]!.revision, deleted: false })
    t.same(state.entries[4], { id: before[0]!.id, job: mut!.job, revision: mut!.revision, deleted: false })
  })

  t.test('watch of an empty bucket signals the initial load at once; the iterable form marks it too', async (t) => {
    const store = await openStore(t, await natsConn(t, nats.url))
    const { state, stop } = collectWatch(store)
    t.teardown(stop)
    await waitFor(() => state.loaded, { what: 'initial load of an empty bucket' })
    t.equal(state.loadedAt, 0)

    const first = makeJob()
    await store.create(first)
    const stream = store.watch()
    const seen: string[] = []
    const second = makeJob()
    for await (const ev of stream) {
      if (ev.type === 'initial-load-done') {
        seen.push('loaded')
        await store.create(second)
      } else {
        seen.push(ev.id)
        if (ev.id === second.id) break
      }
    }
    t.same(seen, [first.id, 'loaded', second.id])
  })

  t.test('scan lists every job, with filters', async (t) => {
    const store = await openStore(t, await natsConn(t, nats.url))
    const jobs = [
      makeJob(),
      makeJob({ function: 'sleep' }),
      makeJob({ state: 'succeeded' }),
      makeJob({ state: 'failed', function: 'sleep' }),
    ]
    await store.createMany(jobs)
    const ids = async (f?: Parameters<JobStore['scan']>[0]) => {
      const out: string[] = []
      for await (const s of store.scan(f)) out.push(s.job.id)
      return out.sort()
    }
    t.same(await ids(), jobs.map((j) => j.id).sort())
    t.same(await ids({ function: 'sleep' }), [jobs[1]!.id, jobs[3]!.id].sort())
    t.same(await ids({ state: ['succeeded', 'failed'] }), [jobs[2]!.id, jobs[3]!.id].sort())
    t.same(await ids({ state: 'queued', function: 'echo' }), [jobs[0]!.id])
    const empty = await openStore(t, await natsConn(t, nats.url))
    const none: unknown[] = []
    for await (const s of empty.scan()) none.push(s)
    t.same(none, [])
  })

  t.test('purge removes a job and its idempotency claim, leaving no tombstone', async (t) => {
    const nc = await natsConn(t, nats.url)
    const store = await openStore(t, nc)
    const job = makeJob({ idempotencyKey: 'pay-7', state: 'succeeded' })
    t.equal(await store.claimIdempotencyKey('pay-7', job.id), job.id)
    await store.create(job)
    const keep = makeJob()
    await store.create(keep)
    await store.purge(job.id)
    t.equal(await store.get(job.id), null)
    const kv = await new Kvm(jetstream(nc)).open(store.bucket)
    t.equal(await kv.get(`jobs.${job.id}`), null, 'no entry at all, not even a delete marker')
    t.equal(await kv.get(idemKey('pay-7')), null, 'claim removed')
    t.equal(await store.claimIdempotencyKey('pay-7', 'newjob'), 'newjob', 'the key is free again')
    await store.purge(job.id)
    await store.purge('never-existed')
    t.same((await store.get(keep.id))?.job, keep, 'other jobs untouched')
    const { state, stop } = collectWatch(store)
    t.teardown(stop)
    await waitFor(() => state.loaded, { what: 'initial load' })
    t.same(
      state.entries.map((e) => e.id),
      [keep.id],
    )
    // a claim held by another job is not removed with this one
    const other = makeJob({ idempotencyKey: 'pay-7' })
    await store.create(other)
    await store.purge(other.id, { job: other })
    t.equal(await store.claimIdempotencyKey('pay-7', 'x'), 'newjob')
    // purge with a stale known revision still removes the newer record
    const moved = makeJob()
    const first = await store.create(moved)
    await store.mutate(moved.id, 1, (c) => ({ ...c, state: 'succeeded' }))
    await store.purge(moved.id, first)
    t.equal(await store.get(moved.id), null, 'newer revision removed as well')
    t.equal(await kv.get(`jobs.${moved.id}`), null)
  })

  t.test('garbage in the bucket is skipped, never thrown, and replaced on create', async (t) => {
    const nc = await natsConn(t, nats.url)
    const store = await openStore(t, nc)
    const kv = await new Kvm(jetstream(nc)).open(store.bucket)
    const good = makeJob()
    await store.create(good)
    await kv.put('jobs.g1', 'not json')
    await kv.put('jobs.g2', JSON.stringify({ id: 'g2', state: 'weird' }))
    await kv.put('jobs.g3', JSON.stringify(makeJob({ id: 'someone-else' })))
    await kv.put('jobs.g4', new Uint8Array([0xff, 0x00, 0xfe]))
    await kv.put(idemKey('k1'), '{{{')
    for (const id of ['g1', 'g2', 'g3', 'g4']) t.equal(await store.get(id), null, `get ${id} → null`)
    t.equal(await store.mutate('g1', 1, (c) => c), null, 'mutate of garbage → null')
    const { state, stop } = collectWatch(store)
    t.teardown(stop)
    await waitFor(() => state.loaded, { what: 'initial load despite garbage' })
    t.same(
      state.entries.map((e) => e.id),
      [good.id],
      'watch skipped the garbage',
    )
    const scanned: string[] = []
    for await (const s of store.scan()) scanned.push(s.job.id)
    t.same(scanned, [good.id], 'scan skipped the garbage')
    const replaced = await store.create(makeJob({ id: 'g1' }))
    t.equal(replaced.created, true, 'create replaces garbage under its key')
    t.equal((await store.get('g1'))?.job.id, 'g1')
    t.equal(await store.claimIdempotencyKey('k1', 'jobX'), 'jobX', 'a garbage claim is replaced')
    await waitFor(() => state.entries.some((e) => e.id === 'g1'), { what: 'watch sees the replacement' })
  })

  t.test('a watch whose connection is closed reports it once through onError', async (t) => {
    const nc = await natsConn(t, nats.url)
    const store = await openStore(t, nc)
    let loaded = false
    const failures: unknown[] = []
    store.watchJobs(
      () => undefined,
      () => (loaded = true),
      (err) => failures.push(err),
    )
    await waitFor(() => loaded, { what: 'initial load' })
    await nc.close()
    await waitFor(() => failures.length > 0, { what: 'onError after the connection closed' })
    t.equal(failures.length, 1)
    await t.rejects(
      store.get('x'),
      { code: errors.CLOSED.code },
      'operations on a closed connection reject with CLOSED',
    )
  })

  t.test('close is idempotent and later calls reject with CLOSED', async (t) => {
    const store = await openStore(t, await natsConn(t, nats.url))
    const { state } = collectWatch(store)
    await waitFor(() => state.loaded, { what: 'initial load' })
    const inflight = store.create(makeJob())
    const p = store.close()
    t.equal(store.close(), p)
    await p
    t.equal((await inflight).created, true, 'an operation in flight at close completes')
    await t.rejects(store.get('x'), { code: errors.CLOSED.code })
    await t.rejects(store.create(makeJob()), { code: errors.CLOSED.code })
    t.throws(
      () =>
        store.watchJobs(
          () => undefined,
          () => undefined,
        ),
      { code: errors.CLOSED.code },
    )
  })
})

t.test('every acked create survives kill -9 of nats-server; watch resumes without losing updates', async (t) => {
  const nats = await startNats()
  t.teardown(() => nats.close())
  const nc = await natsConn(t, nats.url)
  const store = await openStore(t, nc)
  const { state, stop } = collectWatch(store)
  t.teardown(stop)
  await waitFor(() => state.loaded, { what: 'initial load' })

  const jobs = Array.from({ length: 2000 }, () => makeJob())
  const acked = await store.createMany(jobs)
  t.equal(acked.filter((r) => r.created).length, jobs.length)
  await nats.server.kill()
  await nats.server.restart()

  // the same client, reconnected: every acked job is there
  const found = await Promise.all(jobs.map((j) => store.get(j.id)))
  t.equal(found.filter((f) => f !== null).length, jobs.length, 'every acked job is stored after kill -9 + restart')
  let scanned = 0
  for await (const _ of store.scan()) scanned++
  t.equal(scanned, jobs.length)

  // updates after the restart reach the watcher, after every earlier one, nothing lost or repeated
  const more = Array.from({ length: 50 }, () => makeJob())
  await store.createMany(more)
  await store.mutate(jobs[0]!.id, 1, (c) => ({ ...c, state: 'running' }))
  const total = jobs.length + more.length + 1
  await waitFor(() => state.entries.length >= total, { timeoutMs: 60_000, what: 'watch caught up after restart' })
  const revisions = state.entries.map((e) => e.revision)
  t.ok(
    revisions.every((r, i) => i === 0 || r > revisions[i - 1]!),
    'strictly increasing revisions: no duplicates, in order',
  )
  t.equal(state.entries.length, total, 'every update delivered exactly once')
  t.same(new Set(state.entries.map((e) => e.id)), new Set([...jobs, ...more].map((j) => j.id)))
  t.equal(state.entries.at(-1)!.job!.state, 'running')
})

t.test('a write whose ack was lost is recognised on retry, not applied twice', async (t) => {
  const nats = await startNats()
  t.teardown(() => nats.close())
  const nc = await natsConn(t, nats.url)
  const store = await openStore(t, nc, { requestTimeoutMs: 200 })
  const base = await store.create(makeJob())
  const job = makeJob()
  // Every publish on the two records' subjects, seen by another connection once the server resumes.
  const observer = await natsConn(t, nats.url)
  const published = new Map<string, number>()
  observer.subscribe(`$KV.${store.bucket}.jobs.>`, {
    callback: (_err, msg) => {
      const id = msg.subject.slice(`$KV.${store.bucket}.jobs.`.length)
      published.set(id, (published.get(id) ?? 0) + 1)
    },
  })
  await observer.flush()
  // freeze the server: the writes below reach its socket but are acked only after it resumes,
  // long after their 200 ms timeout; the store retries meanwhile (reads, to learn whether they landed)
  nats.server.pause()
  const sentBefore = nc.stats().outMsgs
  let calls = 0
  const mutating = store.mutate(base.job.id, 1, (c) => (calls++, { ...c, attempts: c.attempts + 1 }), base)
  const creating = store.create(job)
  // the two writes, then at least one retry of each on the wire: their acks certainly timed out
  await waitFor(() => nc.stats().outMsgs - sentBefore >= 4, { timeoutMs: 30_000, what: 'the store retrying' }).catch(
    (e) => {
      t.comment(`sent before the pause: ${sentBefore}; now: ${JSON.stringify(nc.stats())}`)
      throw e
    },
  )
  const retries = nc.stats().outMsgs - sentBefore - 2
  nats.server.resume()
  const m = await mutating
  const c = await creating
  await observer.flush()
  t.ok(retries >= 2, `the store retried while no ack could come (${retries} messages after the two writes)`)
  t.equal(calls, 1, 'fn applied once')
  t.equal(m!.job.attempts, 1)
  t.equal((await store.get(base.job.id))!.job.attempts, 1, 'stored once: attempts incremented by one')
  t.equal(published.get(base.job.id), 1, 'the mutate was written once: the retry found it had landed')
  t.equal(c.created, true, 'the create that landed before its retries counts as ours')
  t.equal(published.get(job.id), 1, 'the create was written once')
  t.same((await store.get(job.id))!.job, job)
})

t.test('a watch started while NATS is down catches up when it returns', async (t) => {
  const nats = await startNats()
  t.teardown(() => nats.close())
  const nc = await natsConn(t, nats.url)
  const store = await openStore(t, nc)
  const early = makeJob()
  await store.create(early)
  await nats.server.kill()
  const { state, stop } = collectWatch(store)
  t.teardown(stop)
  await nats.server.restart()
  await waitFor(() => state.loaded, { timeoutMs: 60_000, what: 'initial load after NATS came back' })
  t.same(
    state.entries.map((e) => e.id),
    [early.id],
  )
  const late: Job = makeJob()
  await store.create(late)
  await waitFor(() => state.entries.length === 2, { what: 'live update' })
  t.equal(state.entries[1]!.id, late.id)
})

t.test(
  "a mutate abandoned through its signal stops retrying at once (a deposed boss's write ends with its term)",
  async (t) => {
    const nats = await startNats()
    t.teardown(() => nats.close())
    const nc = await natsConn(t, nats.url)
    const store = await openStore(t, nc, { requestTimeoutMs: 300, operationTimeoutMs: 20_000 })
    const job = makeJob()
    const created = await store.create(job)
    nats.server.pause() // JetStream stops answering: every attempt times out and is retried
    t.teardown(() => nats.server.resume())
    const ending = new AbortController()
    const t0 = Date.now()
    const write = store.mutate(job.id, 1, (cur) => ({ ...cur, state: 'running' }), {
      ...created,
      signal: ending.signal,
    })
    const settled = write.then(
      () => 'written',
      (err: BosunError) => err.code,
    )
    await new Promise((r) => setTimeout(r, 700))
    ending.abort('term ended')
    const abortedAt = Date.now()
    const outcome = await Promise.race([settled, new Promise((r) => setTimeout(() => r('still retrying'), 5000))])
    t.equal(
      outcome,
      errors.NOT_LEADER.code,
      `abandoned ${Date.now() - abortedAt} ms after the abort (${Date.now() - t0} ms in all), ` +
        'not after the 20 s budget',
    )
    nats.server.resume()
  },
)
