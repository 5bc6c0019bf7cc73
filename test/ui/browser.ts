/**
 * Debian's chromium, headless, driven by playwright-core, each launch on a fresh profile. Tests skip
 * when it is missing (naming why), unless SHOAL_REQUIRE_BROWSER=1: then a missing browser fails.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, BrowserContextOptions, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const hasBrowser = existsSync(CHROMIUM);
if (!hasBrowser && process.env.SHOAL_REQUIRE_BROWSER === '1') throw new Error(`SHOAL_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing (apt-get install chromium)`);

export function skipReason(file: string): void {
  if (!hasBrowser) console.warn(`${file}: skipped: ${CHROMIUM} is missing (Debian's chromium package; .ci/run installs it)`);
}

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export class Browsers implements AsyncDisposable {
  #open: { ctx: BrowserContext; profile: string }[] = [];

  /** A new browser on a fresh profile, at `url`. */
  async open(url: string, opts: BrowserContextOptions = {}): Promise<Page> {
    const { chromium } = await import('playwright-core');
    const profile = mkdtempSync(join(tmpdir(), 'shoal-ui-profile-'));
    const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, ...opts });
    this.#open.push({ ctx, profile });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(url);
    return page;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const { ctx, profile } of this.#open.splice(0)) {
      await ctx.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    }
  }
}

/**
 * Runs `body` once more, with a fresh browser, when the browser went away under it (Chromium's page
 * closed: "Target page, context or browser has been closed"). Seen once in six CI runs of the whole
 * suite (stop 30), never in a run of the UI tests alone. Any other failure is the test's own.
 */
export async function againIfBrowserClosed(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (!/has been closed/.test(String(err))) throw err;
    console.warn(`the browser closed under the test (${String(err).slice(0, 200)}): once more with a fresh one`);
    await body();
  }
}
