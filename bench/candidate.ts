/**
 * A candidate for the benchmark's failover measurement, run as its own process by bench/runtime.ts:
 * `node dist/bench/candidate.js` with the runtime env (ZK_CONNECT, NATS_URL, BOSUN_CLUSTER,
 * ZK_SESSION_TIMEOUT_MS, BOSUN_NODE_ID) and BENCH_ELECTION (the election name).
 *
 * Prints one JSON line per event on stdout, each with `t` = Date.now() (same machine, so times are
 * comparable across processes): `ready` (with the current leader), `elected` (onElected fired, with
 * the epoch), `deposed`, `closing`, `closed`. SIGTERM closes the node gracefully (the election is
 * resigned first) and exits 0.
 */
import { loadRuntimeConfig, silentLogger, startNode } from '../runner/index.js'

const print = (ev: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(JSON.stringify({ ev, t: Date.now(), pid: process.pid, ...fields }) + '\n')
}

const election = process.env.BENCH_ELECTION ?? 'boss'
const node = await startNode(loadRuntimeConfig(), { role: 'bench', logger: silentLogger() })

let closing = false
async function close(): Promise<void> {
  if (closing) return
  closing = true
  print('closing')
  await node.close()
  print('closed')
  process.exit(0)
}
process.on('SIGTERM', () => void close())
process.on('SIGINT', () => void close())

const leader = await node.election.registerCandidate(election, node.transport.address, {
  onElected(l) {
    print('elected', { id: node.id, epoch: l.epoch })
  },
  onDeposed(reason, epoch) {
    print('deposed', { id: node.id, reason, epoch })
  },
})
print('ready', { id: node.id, leader: leader?.id ?? null })
