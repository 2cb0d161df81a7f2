/**
 * Asking a function thread what function modules declare: the thread imports the files as a run
 * would and answers, per file, whether `export const config = { isolation: 'inline' }` is set
 * (worker/executor/catalog.ts uses it to pick the inline executor). Kept apart from FunctionPool,
 * which only runs jobs: this is a question/answer exchange over the same thread port.
 */
import type { Worker } from 'node:worker_threads'
import type { DescribedMessage, ToThread } from './thread-protocol.js'

export class ModuleDescriber {
  private nextId = 1
  private readonly waiting = new Map<number, (configs: DescribedMessage['configs']) => void>()

  /**
   * Ask `worker` about `files`. A module that fails to load, or a thread that does not answer within
   * `timeoutMs`, counts as not inline.
   */
  async describe(worker: Worker, files: readonly string[], timeoutMs: number): Promise<Map<string, boolean>> {
    const out = new Map(files.map((f) => [f, false]))
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
    for (const f of files) out.set(f, configs?.[f]?.inline === true)
    return out
  }

  /** A thread's answer; an answer nobody waits for (late, or unknown id) is dropped. */
  onDescribed(msg: DescribedMessage): void {
    this.waiting.get(msg.id)?.(msg.configs)
  }
}
