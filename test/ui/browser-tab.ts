/**
 * Headless Chromium tabs for test/ui/dashboard.test.ts (Debian's /usr/bin/chromium, driven by
 * puppeteer-core): a tab that records its requests and script errors, DOM waits that show the
 * dashboard's panels when they time out, and screenshots into $CI_OUTPUT_DIR (default .ci/out).
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import puppeteer, { type Browser, type HTTPRequest, type Page } from 'puppeteer-core'
import { ROOT } from '../helpers/processes.js'

const CHROMIUM = process.env.BOSUN_CHROMIUM ?? '/usr/bin/chromium'
/** DOM waits: generous, a loaded 2-core machine runs three workers, an API, servers and a browser. */
export const WAIT_MS = 60_000
const OUT = process.env.CI_OUTPUT_DIR ?? join(ROOT, '.ci', 'out')

if (!existsSync(CHROMIUM))
  throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/ensure-servers.mjs does it)`)

// `until` below runs a function in Chromium; the project's TypeScript lib has no DOM.
declare const document: { querySelector(selector: string): { textContent: string | null } | null }

/** A browser page that records every request it makes and every script error. */
export interface Tab {
  page: Page
  requests: HTTPRequest[]
  errors: string[]
}

export async function openTab(t: { teardown(fn: () => unknown): void }, url: string): Promise<Tab> {
  const browser: Browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--headless=new', '--disable-dev-shm-usage'],
    protocolTimeout: 120_000,
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.setViewport({ width: 1440, height: 1000 })
  const tab: Tab = { page, requests: [], errors: [] }
  page.on('request', (r) => tab.requests.push(r))
  page.on('pageerror', (e) => tab.errors.push(String(e)))
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) tab.errors.push(m.text())
  })
  await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS })
  return tab
}

/** Wait until `fn(...args)` is truthy in the page; on a timeout, say what and show the panels' text. */
export async function until(tab: Tab, what: string, fn: (...args: any[]) => unknown, ...args: unknown[]) {
  try {
    await tab.page.waitForFunction(fn, { timeout: WAIT_MS, polling: 100 }, ...args)
  } catch (err) {
    const text = await tab.page
      .evaluate(() =>
        ['banner', 'boss', 'timeline', 'stream-status', 'workers']
          .map((id) => `${id}: ${document.querySelector(`[data-testid="${id}"]`)?.textContent ?? '(none)'}`)
          .join('\n'),
      )
      .catch(() => '(page gone)')
    throw new Error(`the page never showed ${what}: ${(err as Error).message}\n${text}`, { cause: err })
  }
}

export const attr = (tab: Tab, selector: string, name: string) =>
  tab.page.$eval(selector, (el, n) => el.getAttribute(n), name)

export async function screenshot(tab: Tab, name: string): Promise<void> {
  mkdirSync(OUT, { recursive: true })
  await tab.page.screenshot({ path: join(OUT, name), fullPage: true })
  if (process.env.BOSUN_UPDATE_SCREENSHOT === '1' && name === 'dashboard.png') {
    mkdirSync(join(ROOT, 'docs'), { recursive: true })
    await tab.page.screenshot({ path: join(ROOT, 'docs', 'dashboard.png'), fullPage: true })
  }
}
