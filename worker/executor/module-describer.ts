/**
 * Asking a function thread what function modules declare: the thread imports the files as a run
 * would and answers, per file, whether `export const config = { isolation: 'inline' }` is set
 * (worker/executor/executor.ts uses it to pick the inline executor) and the limits its config
 * declares (concurrency, rateLimit, …: README "Limits", unparsed here). Kept apart from FunctionPool,
 * which only runs jobs: this is a question/answer exchange over the same thread port.
 */
import type { Worker } from 'node:worker_threads'
import type { DescribedMessage, ToThread } from './thread-protocol.js'

/** What a module declares: inline isolation, and its config's limits fields as found (not yet parsed). */
export interface ModuleDeclaration {
  inline: boolean
  limits?: unknown
}

export class ModuleDescriber {
  private nextId = 1
  private readonly waiting = new Map<number, (configs: DescribedMessage['configs']) => void>()

  /**
   * Ask `worker` about `files`. A module that fails to load, or a thread that does not answer within
   * `timeoutMs`, counts as not inline and declaring no limits.
   */
  async describe(worker: Worker, files: readonly string[], timeoutMs: number): Promise<Map<string, ModuleDeclaration>> {
    const out = new Map<string, ModuleDeclaration>(files.map((f) => [f, { inline: false }]))
    if (files.length === 0) return out
    const id = this.nextId++
    const answer = new Promise<DescribedMessage['configs'] | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        resolve(undefined)
      }, timeoutMs)
      this.waiting.set(id, (configs) => {
        clearTimeout(timer)
        this.waiting.delete(id)
        resolve(configs)
      })
    })
    worker.postMessage({ t: 'describe', id, files: [...files] } satisfies ToThread)
    const configs = await answer
    for (const f of files) {
      const c = configs?.[f]
      out.set(
        f,
        c?.limits === undefined ? { inline: c?.inline === true } : { inline: c.inline === true, limits: c.limits },
      )
    }
    return out
  }

  /** A thread's answer; an answer nobody waits for (late, or unknown id) is dropped. */
  onDescribed(msg: DescribedMessage): void {
    this.waiting.get(msg.id)?.(msg.configs)
  }
}
