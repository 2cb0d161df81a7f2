/**
 * Role switching of a worker process (worker/role-switch.ts) on fakes: the boss runs no jobs. A
 * process that leads must never take dispatches nor be registered as a worker — in particular not
 * after a rejoin (a term found a newer boss: resign, candidate again) that elects it again while its
 * new term is still starting. The fakes call back synchronously, as the ZooKeeper election does.
 */
import t from 'tap'
import type { DeposedReason, LeaderInfo, Leadership } from '../../runner/index.js'
import { silentLogger } from '../../runner/logger.js'
import { RoleSwitch, type RolePorts } from '../../worker/role-switch.js'

function leadership(epoch: number): Leadership & { abort(): void } {
  const ctl = new AbortController()
  return {
    name: 'boss',
    epoch,
    since: new Date().toISOString(),
    signal: ctl.signal,
    isCurrent: () => !ctl.signal.aborted,
    abort: () => ctl.abort(),
  }
}

/** A fake process around the switch: records every port call and each invariant breach. */
class Harness implements RolePorts {
  readonly logger = silentLogger()
  readonly sw = new RoleSwitch(this)
  accepting = false
  registered = false
  /** Epochs of the boss terms started, in order. */
  readonly terms: number[] = []
  term: { epoch: number; acting: boolean } | undefined
  /** The leadership the fake election holds for us now. */
  leading: (Leadership & { abort(): void }) | undefined
  readonly breaches: string[] = []
  readonly log: string[] = []
  /** What the next candidate() does: elect us (with this epoch) or follow. */
  nextElection: number | 'follow' = 'follow'
  /** A register/unregister takes this many ticks (ZooKeeper round trips). */
  ioTicks = 2

  private async io(): Promise<void> {
    for (let i = 0; i < this.ioTicks; i++) await new Promise((r) => setImmediate(r))
  }

  private check(what: string): void {
    this.log.push(what)
    if (this.leading && this.accepting) {
      this.breaches.push(`${what}: accepting while leading (epoch ${this.leading.epoch})`)
    }
  }

  setAccepting(accepting: boolean): void {
    this.accepting = accepting
    this.check(`accepting=${accepting}`)
  }

  async registerWorker(): Promise<void> {
    if (this.leading) this.breaches.push(`register as a worker while leading (epoch ${this.leading.epoch})`)
    await this.io()
    this.registered = true
    this.check('registered')
  }

  async unregisterWorker(): Promise<void> {
    await this.io()
    this.registered = false
    this.check('unregistered')
  }

  startBoss(l: Leadership): void {
    if (this.registered) this.breaches.push(`boss term ${l.epoch} started while registered as a worker`)
    this.terms.push(l.epoch)
    // Still loading: the term is not active yet (the window of the defect).
    this.term = { epoch: l.epoch, acting: false }
    this.check(`startBoss ${l.epoch}`)
  }

  stopBoss(): void {
    this.term = undefined
    this.check('stopBoss')
  }

  bossActing(): boolean {
    return this.term?.acting ?? false
  }

  /** The election side: depose synchronously (as the candidacy does), then delete our node. */
  async resign(): Promise<void> {
    this.depose('resigned')
    await this.io()
  }

  async candidate(): Promise<LeaderInfo | null> {
    await this.io()
    if (this.nextElection === 'follow') return null
    this.elect(this.nextElection)
    return { id: 'me', address: 'a', host: 'h', pid: 1, epoch: this.nextElection, since: '' }
  }

  elect(epoch: number): void {
    this.leading = leadership(epoch)
    this.sw.elected(this.leading)
    // Checked once onElected returned: it must have turned accepting off synchronously.
    this.check(`elected ${epoch}`)
  }

  depose(reason: DeposedReason): void {
    const l = this.leading
    if (!l) return
    this.leading = undefined
    l.abort()
    this.check(`deposed ${reason}`)
    this.sw.deposed(reason)
  }

  /** Let every queued step and I/O run. */
  async settle(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      await this.sw.settled()
      await new Promise((r) => setImmediate(r))
    }
  }
}

t.test('start: a worker that is not elected advertises itself and accepts', async (t) => {
  const h = new Harness()
  t.equal(await h.sw.start(), null)
  await h.settle()
  t.ok(h.registered, 'registered as a worker')
  t.ok(h.accepting, 'accepting')
  t.same(h.breaches, [])
})

t.test('elected: stops accepting, withdraws the registration, then starts the term', async (t) => {
  const h = new Harness()
  await h.sw.start()
  h.elect(1)
  t.notOk(h.accepting, 'not accepting at once (synchronously in onElected)')
  await h.settle()
  t.notOk(h.registered, 'no worker registration')
  t.same(h.terms, [1], 'one term started')
  t.same(h.breaches, [], `no breach; calls: ${h.log.join(', ')}`)
})

t.test('rejoin and elected again while the new term loads: never a worker while leading', async (t) => {
  const h = new Harness()
  await h.sw.start()
  h.elect(1)
  await h.settle()
  h.term!.acting = true
  // The term is fenced: resign (deposed 'resigned'), candidate again — and win again at once.
  h.nextElection = 2
  h.sw.rejoin('fenced')
  await h.settle()
  t.ok(h.leading, 'leads again')
  t.notOk(h.accepting, 'takes no dispatches')
  t.notOk(h.registered, 'is not registered as a worker')
  t.same(h.terms, [1, 2], 'a new term for the new leadership')
  t.same(h.breaches, [], `no breach; calls: ${h.log.join(', ')}`)
})

t.test('rejoin and follow: becomes a worker again', async (t) => {
  const h = new Harness()
  await h.sw.start()
  h.elect(1)
  await h.settle()
  h.nextElection = 'follow'
  h.sw.rejoin('fenced')
  await h.settle()
  t.notOk(h.leading)
  t.ok(h.registered, 'registered as a worker again')
  t.ok(h.accepting, 'accepting again')
  t.same(h.breaches, [], `no breach; calls: ${h.log.join(', ')}`)
})

t.test('elected while the worker registration is in flight: it is withdrawn, no dispatches', async (t) => {
  const h = new Harness()
  h.ioTicks = 5
  const started = h.sw.start()
  await new Promise((r) => setImmediate(r))
  h.elect(3) // mid-register
  await started
  await h.settle()
  t.notOk(h.accepting)
  t.notOk(h.registered, 'no worker registration left behind')
  t.same(h.terms, [3])
  t.same(h.breaches, [], `no breach; calls: ${h.log.join(', ')}`)
})

t.test('deposed then elected again before the queue ran: ends as boss, one term per leadership', async (t) => {
  const h = new Harness()
  await h.sw.start()
  h.elect(1)
  h.depose('suspended')
  h.elect(2)
  await h.settle()
  t.ok(h.leading)
  t.notOk(h.accepting)
  t.notOk(h.registered)
  t.same(h.terms.at(-1), 2, 'the current leadership has a term')
  const old = h.terms.indexOf(1)
  t.ok(old === -1 || old < h.terms.indexOf(2), 'no term for an old leadership after the new one')
  t.same(h.breaches, [], `no breach; calls: ${h.log.join(', ')}`)
})

t.test('stop: no more role changes, nothing accepted', async (t) => {
  const h = new Harness()
  await h.sw.start()
  h.sw.stop()
  h.elect(1)
  h.depose('resigned')
  await h.settle()
  t.notOk(h.accepting, 'not accepting after stop')
  t.same(h.breaches, [], `no breach; calls: ${h.log.join(', ')}`)
})
