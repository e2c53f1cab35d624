// The browser the browser tests drive: Debian's chromium (CHROMIUM= overrides) through
// playwright-core, headless. Shared by tests/e2e.mjs and tests/dashboard-e2e.mjs.

import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Exits with a failing summary line when there is no browser to drive. */
export function requireChromium() {
  if (!existsSync(executablePath)) {
    console.log(`FAIL no browser at ${executablePath}: apt-get install -y chromium (or set CHROMIUM=)`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

export function launchChromium() {
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
  });
}
