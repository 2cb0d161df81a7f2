// EXPERIMENT (README "A consumer that goes silent"; jobs/streams/consumer-pull.ts):
//   node docs/experiments/pull-request-drop.mjs [rounds] [consumers]      (from a checkout with dist/ built)
// Shows nats-server 2.9.10 ending a pull request without its "408 Request Timeout" when a message
// meets the request in the moment of its expiry (fixed in nats-server 2.9.16, commit df282a221).
// Each round gives each of `consumers` fresh consumers one pull request (batch 10, expires 1 s, idle
// heartbeat 400 ms), freezes the server (SIGSTOP) 20 ms before the expiry, publishes one message the
// consumers all filter, and thaws the server 200 ms later: the server then finds, in one go, expired
// requests and a new message. A request answered with the message or with a 408 is what the client
// expects; a request that got neither ended without a word — its client still counts it as open.
const rounds = Number(process.argv[2] ?? 10)
const consumers = Number(process.argv[3] ?? 8)
const { startNats } = await import(`${process.cwd()}/dist/test/helpers/servers.js`)
const { connect, createInbox } = await import(`${process.cwd()}/node_modules/@nats-io/transport-node/lib/mod.js`)
const { jetstreamManager, AckPolicy } = await import(`${process.cwd()}/node_modules/@nats-io/jetstream/lib/mod.js`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const nats = await startNats()
const nc = await connect({ servers: nats.url })
const jsm = await jetstreamManager(nc)
await jsm.streams.add({ name: 'S', subjects: ['s.>'] })
const tally = { message: 0, timeout: 0, nothing: 0 }
try {
  for (let round = 0; round < rounds; round++) {
    const outcomes = []
    const subs = []
    for (let c = 0; c < consumers; c++) {
      const name = `r${round}c${c}`
      await jsm.consumers.add('S', { name, ack_policy: AckPolicy.None, filter_subject: 's.x', deliver_policy: 'new' })
      const inbox = createInbox()
      const seen = { message: false, timeout: false }
      outcomes.push(seen)
      subs.push(
        nc.subscribe(inbox, {
          callback: (_e, m) => {
            const code = m.headers?.code ?? 0
            if (code === 0) seen.message = true
            else if (code === 408) seen.timeout = true
          },
        }),
      )
      await nc.flush()
      const req = { batch: 10, expires: 1e9, idle_heartbeat: 4e8 }
      nc.publish(`$JS.API.CONSUMER.MSG.NEXT.S.${name}`, JSON.stringify(req), { reply: inbox })
    }
    await nc.flush()
    await sleep(980)
    await nats.server.pause()
    nc.publish('s.x', 'hello')
    await sleep(200)
    nats.server.resume()
    await sleep(1500)
    for (const s of outcomes) tally[s.message ? 'message' : s.timeout ? 'timeout' : 'nothing']++
    for (const s of subs) s.unsubscribe()
    for (let c = 0; c < consumers; c++) await jsm.consumers.delete('S', `r${round}c${c}`)
    console.log(`round ${round + 1}: ${JSON.stringify(tally)}`)
  }
} finally {
  await nc.close()
  await nats.close()
}
console.log(`pull requests ended without a message or a 408: ${tally.nothing} of ${rounds * consumers}`)
