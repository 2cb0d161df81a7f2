/**
 * The test kit's freePort(): servers and the API started by tests bind the port it hands out a
 * moment later, so it must not be one any process's outgoing connection can take as its local port
 * in between (the kernel's ephemeral range). Such a collision made the API exit with EADDRINUSE and
 * a CI run wait 240 s for a cluster that could never become ready (test/security/nats-auth.test.ts).
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import t from 'tap'
import { freePort } from '../helpers/servers.js'

const [ephemeralLo, ephemeralHi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
  .trim()
  .split(/\s+/)
  .map(Number) as [number, number]

t.test('ports are handed out below the ephemeral range, each once, and are bindable', async (t) => {
  const ports: number[] = []
  for (let i = 0; i < 200; i++) ports.push(await freePort())
  const inRange = ports.filter((p) => p >= ephemeralLo && p <= ephemeralHi)
  t.same(inRange, [], `none inside ${ephemeralLo}–${ephemeralHi}`)
  t.equal(new Set(ports).size, ports.length, 'no port twice')
  const port = ports[0]!
  await new Promise<void>((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()))
  })
  t.pass(`port ${port} could be bound`)
})
