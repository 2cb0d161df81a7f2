import t from 'tap'
import { freePort, startNats, startZooKeeper, startZkEnsemble, fourLetterWord } from './helpers/servers.js'

t.test('standalone ZooKeeper starts, restarts and is killed', async (t) => {
  const zk = await startZooKeeper()
  t.teardown(() => zk.close())
  t.match(await fourLetterWord(zk.server.port, 'srvr'), /Mode: standalone/)
  await zk.server.restart()
  t.match(await fourLetterWord(zk.server.port, 'srvr'), /Mode: standalone/)
  await zk.server.kill()
  t.equal(zk.server.running, false)
})

t.test('nats-server with JetStream starts and restarts', async (t) => {
  const nats = await startNats()
  t.teardown(() => nats.close())
  const res = await fetch(`http://127.0.0.1:${nats.server.monitorPort}/jsz`)
  const jsz = (await res.json()) as { config?: { store_dir?: string } }
  t.ok(jsz.config?.store_dir, 'JetStream is enabled')
  await nats.server.restart()
  t.ok(nats.server.running)
})

t.test('a 3-member ZooKeeper ensemble serves with one leader', async (t) => {
  const zk = await startZkEnsemble(3)
  t.teardown(() => zk.close())
  const modes = await Promise.all(zk.servers.map((s) => fourLetterWord(s.port, 'srvr')))
  t.equal(modes.filter((m) => /Mode: leader/.test(m)).length, 1)
  t.equal(modes.filter((m) => /Mode: follower/.test(m)).length, 2)
})

t.test('freePort never hands out the same port twice (an ensemble needs 9 distinct ones)', async (t) => {
  const ports: number[] = []
  for (let i = 0; i < 300; i++) ports.push(await freePort())
  t.equal(new Set(ports).size, ports.length, 'all distinct')
})
