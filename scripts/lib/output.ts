/**
 * Output prefixer: every line a child prints becomes `name | line`, names padded to one width and
 * coloured per process when the terminal supports colour (foreman style).
 */
import type { Readable } from 'node:stream'

const COLOURS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94] as const
const DIM = 90
const RED = 31
/** Bold yellow: a line that must stand out (a leadership change). */
const HIGHLIGHT = '1;33'

/** Where prefixed lines go; a test can pass an array-backed writer. */
export interface LineWriter {
  write(text: string): unknown
}

export interface OutputOptions {
  /** Colour the prefixes (default: stdout is a TTY and NO_COLOR is unset, or FORCE_COLOR is set). */
  color?: boolean
  out?: LineWriter
}

/** Should output be coloured by default? */
export function defaultColor(
  stream: { isTTY?: boolean } = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return true
  return stream.isTTY === true
}

/** Prefixes lines per named source. */
export class Output {
  readonly color: boolean
  private readonly out: LineWriter
  private readonly colours = new Map<string, number>()
  private width = 0

  constructor(opts: OutputOptions = {}) {
    this.color = opts.color ?? defaultColor()
    this.out = opts.out ?? process.stdout
  }

  /** Declare a source name (gives it a colour and widens the prefix column). `dim` for servers. */
  register(name: string, dim = false): void {
    if (!this.colours.has(name)) this.colours.set(name, dim ? DIM : COLOURS[this.colours.size % COLOURS.length]!)
    this.width = Math.max(this.width, name.length)
  }

  /**
   * Print one line (or several, split on newlines) under `name`. `error` shows the text in red;
   * `highlight` in bold yellow, or after `>> ` without colours.
   */
  line(name: string, text: string, style?: 'error' | 'highlight'): void {
    this.register(name)
    const label = name.padEnd(this.width)
    for (const l of text.split(/\r?\n/)) {
      const body = styled(l, style, this.color)
      this.out.write(`${this.color ? paint(this.colours.get(name)!, `${label} |`) : `${label} |`} ${body}\n`)
    }
  }

  /** Prefix every line of `stream` with `name` until it ends; a partial last line is flushed at the end. */
  pipe(name: string, stream: Readable): void {
    this.register(name)
    let pending = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      pending += chunk
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const l of lines) this.line(name, l.replace(/\r$/, ''))
    })
    stream.on('end', () => {
      if (pending !== '') this.line(name, pending)
      pending = ''
    })
    stream.on('error', () => undefined)
  }
}

function styled(text: string, style: 'error' | 'highlight' | undefined, color: boolean): string {
  if (style === 'error') return color ? paint(RED, text) : text
  if (style === 'highlight') return color ? paint(HIGHLIGHT, text) : `>> ${text}`
  return text
}

function paint(code: number | string, text: string): string {
  return `\u001b[${code}m${text}\u001b[0m`
}
