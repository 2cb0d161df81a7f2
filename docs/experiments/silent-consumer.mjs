// EXPERIMENT (README "A consumer that goes silent"):
//   node docs/experiments/silent-consumer.mjs <a checkout with dist/ built>
// A native one-by-one run of 20,000 noop jobs during which the boss's SUBMIT consumer is deleted
// 300 ms in (as if it went silent): total time. argv[2]: the checkout whose dist is used.
const root = process.argv[2]
const { startZooKeeper, startNats } = await import(`${root}/dist/test/helpers/servers.js`)
const { startBosun } = await import(`${root}/dist/bench/compare/bosun-side.js`)
const { throughput } = await import(`${root}/dist/bench/compare/measure.js`)
const { connect } = await import(`${root}/node_modules/@nats-io/transport-node/lib/mod.js`)
const { jetstreamManager } = await import(`${root}/node_modules/@nats-io/jetstream/lib/mod.js`)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const nc = await connect({ servers: nats.url })
const jsm = await jetstreamManager(nc)
try {
  const sys = await startBosun(zk, nats, { workers: 5, concurrency: 16, isolation: 'threads', sessionTimeoutMs: 2000 })
  try {
    await throughput(sys, 'native-one', 20000) // warm-up
    for (let i = 0; i < 2; i++) {
      const stream = `bosun_${sys.cluster}_submit`
      setTimeout(async () => {
        for await (const ci of jsm.consumers.list(stream)) await jsm.consumers.delete(stream, ci.name).catch(() => {})
      }, 300)
      const r = await throughput(sys, 'native-one', 20000)
      console.log(`${root}: total ${r.totalMs} ms (submit ${r.submitMs} ms), ${Math.round(r.jobsPerSec)} jobs/s`)
    }
  } finally {
    await sys.close()
  }
} finally {
  await nc.close()
  await nats.close()
  await zk.close()
}
