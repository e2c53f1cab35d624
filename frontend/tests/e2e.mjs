// End-to-end browser test of the UI against a running server (DRYDOCK_URL): start page,
// playground start, typing into the terminal, large paste, lesson commands and checks,
// reload reattaching to the same scrollback, narrow-screen layout, close. Uses Debian's
// chromium through playwright-core. Screenshots go to $DRYDOCK_ARTIFACTS.
// Usage: DRYDOCK_URL=http://127.0.0.1:18080 node tests/e2e.mjs
//        DRYDOCK_E2E_MOCK=1 node tests/e2e.mjs   (starts tests/mock-server.mjs on MOCK_PORT and
//        tests against it; for UI work while the real server is not available)

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, requireChromium } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const useMock = process.env.DRYDOCK_E2E_MOCK === '1';
const mockPort = process.env.MOCK_PORT ?? '18081';
const base = (useMock ? `http://127.0.0.1:${mockPort}` : (process.env.DRYDOCK_URL ?? 'http://127.0.0.1:8080')).replace(/\/$/, '');
const artifacts = process.env.DRYDOCK_ARTIFACTS ?? path.resolve(here, '../test-artifacts');
const READY_MS = Number(process.env.DRYDOCK_E2E_READY_MS ?? 180_000);
mkdirSync(artifacts, { recursive: true });

let passed = 0;
let failed = 0;
const results = [];

async function step(name, fn) {
  const began = Date.now();
  try {
    await fn();
    passed++;
    results.push(`ok   ${name} (${Date.now() - began} ms)`);
    console.log(`ok   ${name} (${Date.now() - began} ms)`);
    return true;
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    return false;
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const terminalText = (page) => page.evaluate(() => window.__drydock?.terminalText() ?? '');

async function waitForText(page, re, timeout = 30_000) {
  const until = Date.now() + timeout;
  let text = '';
  while (Date.now() < until) {
    text = await terminalText(page);
    if (re.test(text)) return text;
    await page.waitForTimeout(200);
  }
  throw new Error(`terminal never showed ${re}; it shows:\n${text.split('\n').slice(-15).join('\n')}`);
}

async function waitForPrompt(page) {
  await page.waitForFunction(() => window.__drydock?.terminalState() === 'open', null, { timeout: READY_MS });
  return waitForText(page, /[$#]\s*$/, 60_000);
}

async function typeCommand(page, command) {
  await page.locator('.term-panel:not([hidden]) .xterm').click();
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
}

async function startFromStartPage(page, selector) {
  await page.goto(`${base}/`);
  await page.locator(selector).first().click();
  const error = page.locator('.progress .alert-error');
  await Promise.race([page.waitForURL(/\/s\/[^/]+$/, { timeout: READY_MS }), error.waitFor({ timeout: READY_MS })]);
  if (await error.isVisible()) throw new Error(`the start page says: ${await error.locator('p').textContent()}`);
  await waitForPrompt(page);
  return new URL(page.url()).pathname.split('/')[2];
}

async function closeSession(page) {
  page.once('dialog', (d) => void d.accept());
  await page.locator('[data-testid=close]').click();
  await page.waitForURL(`${base}/`, { timeout: 30_000 });
}

requireChromium();

let mock = null;
if (useMock) {
  mock = spawn(process.execPath, [path.join(here, 'mock-server.mjs')], { env: { ...process.env, MOCK_PORT: mockPort }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    mock.stdout.once('data', resolve);
    mock.once('exit', (code) => reject(new Error(`mock server exited with ${code}`)));
  });
}
console.log(`testing ${base}${useMock ? ' (mock server)' : ''}`);

const browser = await launchChromium();
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
page.on('pageerror', (e) => consoleErrors.push(String(e)));

let lessons = [];
let sessionId = null;

await step('start page shows playgrounds and lessons (or none)', async () => {
  await page.goto(`${base}/`);
  await page.evaluate(() => localStorage.setItem('drydock.lang', 'en'));
  await page.reload();
  await page.locator('[data-testid=start-docker]').waitFor({ timeout: 15_000 });
  await page.waitForFunction(() => !document.querySelector('.lessons p.muted')?.textContent?.startsWith('…'));
  lessons = await page.evaluate(async () => {
    const r = await fetch('/api/v1/lessons?lang=en');
    return r.ok ? r.json() : [];
  });
  const cards = await page.locator('.lesson-card').count();
  assert(cards === lessons.length, `${lessons.length} lessons from the API but ${cards} cards`);
  await page.screenshot({ path: path.join(artifacts, 'start-page.png'), fullPage: true });
});

await step('language switch shows Chinese and is remembered', async () => {
  const playCard = page.getByTestId('start-docker');
  try {
    await page.getByRole('button', { name: '中文' }).click();
    await playCard.filter({ hasText: '自由练习场' }).waitFor();
    await page.reload();
    await playCard.filter({ hasText: '自由练习场' }).waitFor();
    await page.screenshot({ path: path.join(artifacts, 'start-page-zh.png'), fullPage: true });
  } finally {
    await page.evaluate(() => localStorage.setItem('drydock.lang', 'en'));
    await page.reload();
  }
  await playCard.filter({ hasText: 'Free playground' }).waitFor();
});

const started = await step('free playground starts and shows a prompt', async () => {
  sessionId = await startFromStartPage(page, '[data-testid=start-docker]');
  assert(sessionId, 'no session id in the URL');
});

if (started) {
  await step('typed command runs: echo $((6*7)) prints 42', async () => {
    await typeCommand(page, 'echo $((6*7))');
    await waitForText(page, /^42\s*$/m);
  });

  await step('CJK output shows (UTF-8 input and output)', async () => {
    await page.evaluate(() => window.__drydock.run('echo 你好-$((6*7))'));
    await waitForText(page, /^你好-42\s*$/m);
  });

  await step('Ctrl+C without a selection interrupts the shell', async () => {
    await typeCommand(page, 'sleep 600; echo not-interrupted');
    await page.waitForTimeout(500);
    await page.keyboard.press('Control+C');
    await typeCommand(page, 'echo after-interrupt');
    await waitForText(page, /^after-interrupt\s*$/m, 10_000);
    assert(!/^not-interrupted/m.test(await terminalText(page)), 'sleep was not interrupted');
  });

  await step('Ctrl+Shift+C and Ctrl+C with a selection copy, and send no ^C', async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await page.evaluate(() => navigator.clipboard.writeText('empty'));
    await typeCommand(page, 'sleep 2; echo copy-test-$((6*7))');
    await page.evaluate(() => window.__drydock.selectAll());
    await page.keyboard.press('Control+Shift+C');
    await page.waitForFunction(async () => (await navigator.clipboard.readText()).includes('sleep 2'), null, { timeout: 5000 });
    await page.evaluate(() => navigator.clipboard.writeText('empty'));
    await page.evaluate(() => window.__drydock.selectAll());
    await page.keyboard.press('Control+C');
    await page.waitForFunction(async () => (await navigator.clipboard.readText()).includes('sleep 2'), null, { timeout: 5000 });
    await waitForText(page, /^copy-test-42\s*$/m, 10_000);
  });

  await step('a large paste arrives whole', async () => {
    const size = 100_000;
    await page.evaluate((n) => window.__drydock.run(`printf %s '${'a'.repeat(n)}' | wc -c`), size);
    await waitForText(page, new RegExp(`^\\s*${size}\\s*$`, 'm'), 60_000);
    await typeCommand(page, 'clear; echo $((6*7))');
    await waitForText(page, /^42\s*$/m);
  });

  await step('reload reattaches to the same terminal with its scrollback', async () => {
    await typeCommand(page, 'export DRYDOCK_MARK=reattached; echo before-reload');
    await waitForText(page, /^before-reload\s*$/m);
    await page.reload();
    await waitForPrompt(page);
    const text = await terminalText(page);
    assert(/^42\s*$/m.test(text), `42 is gone after the reload:\n${text}`);
    assert((text.match(/^before-reload\s*$/gm) ?? []).length === 1, `scrollback shows twice or not at all:\n${text}`);
    await typeCommand(page, 'echo mark=$DRYDOCK_MARK');
    await waitForText(page, /^mark=reattached\s*$/m);
    await page.screenshot({ path: path.join(artifacts, 'session-page.png') });
  });

  await step('add an instance (node2 tab, its own shell), then remove it', async () => {
    await page.getByRole('button', { name: 'Add instance' }).click();
    await page.getByRole('tab', { name: 'node2' }).waitFor({ timeout: 30_000 });
    await page.getByRole('tab', { name: 'node2' }).click();
    await page.waitForFunction(() => window.__drydock?.activeInstance() === 'node2' && window.__drydock.terminalState() === 'open', null, { timeout: READY_MS });
    await waitForPrompt(page);
    await typeCommand(page, 'echo on-node-$((1+1))');
    await waitForText(page, /^on-node-2\s*$/m);
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Remove node2' }).click();
    await page.getByRole('tab', { name: 'node2' }).waitFor({ state: 'detached', timeout: 30_000 });
    assert((await page.evaluate(() => window.__drydock.activeInstance())) === 'node1', 'node1 is not active after removing node2');
    await waitForText(page, /^42\s*$/m);
  });

  await step('countdown shows and Extend answers', async () => {
    const before = await page.locator('.countdown').textContent();
    assert(/\d\d:\d\d/.test(before ?? ''), `countdown shows "${before}"`);
    await page.locator('[data-testid=extend]').click();
    await page.locator('.header-notice').filter({ hasText: /Extended|failed/ }).waitFor({ timeout: 15_000 });
    const notice = await page.locator('.header-notice').textContent();
    assert(notice === 'Extended', `extend said "${notice}"`);
  });

  await step('shell exit shows the notice and Enter starts a new shell', async () => {
    await typeCommand(page, 'exit 3');
    await waitForText(page, /shell exited \(status 3\) — press Enter to start a new one/, 30_000);
    await page.keyboard.press('Enter');
    await waitForPrompt(page);
    await typeCommand(page, 'echo new-shell-$((6*7))');
    await waitForText(page, /^new-shell-42\s*$/m);
  });

  await step('session page on a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(artifacts, 'session-page-phone.png') });
    await page.setViewportSize({ width: 1366, height: 768 });
  });

  await step('close deletes the session and returns to the start page', async () => {
    await closeSession(page);
    const status = await page.evaluate(async (id) => (await fetch(`/api/v1/sessions/${id}`)).status, sessionId);
    assert(status === 404, `the closed session still answers ${status}`);
  });
}

const lesson = lessons.find((l) => l.template === 'docker') ?? null;
if (lesson) {
  await step(`lesson "${lesson.id}": a runnable command runs and Check answers`, async () => {
    await startFromStartPage(page, `[data-lesson="${lesson.id}"]`);
    await page.locator('.lesson-pane .step-title').waitFor({ timeout: 30_000 });
    // Walk the steps until one has a runnable block.
    for (let i = 0; i < 30 && (await page.locator('.runnable-block').count()) === 0; i++) {
      const next = page.locator('.step-nav button').last();
      if (await next.isDisabled()) break;
      await next.click();
    }
    const block = page.locator('.runnable-block').first();
    if ((await block.count()) === 0) {
      console.log('     (the lesson has no runnable command)');
    } else {
      const command = (await block.textContent()).trim().split('\n')[0];
      await block.click();
      const esc = command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      await waitForText(page, new RegExp(`${esc}[\\s\\S]*\\n.*[$#]\\s*$`), 120_000);
    }
    if ((await page.locator('[data-testid=check]').count()) > 0) {
      await page.locator('[data-testid=check]').click();
      await page.locator('.check-result.pass, .check-result.fail').waitFor({ timeout: 120_000 });
    } else {
      console.log('     (this step has no check)');
    }
    await page.screenshot({ path: path.join(artifacts, 'lesson-session.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(artifacts, 'lesson-session-phone.png') });
    const [lessonBox, termBox] = [await page.locator('.lesson-pane').boundingBox(), await page.locator('.term-pane').boundingBox()];
    assert(lessonBox && termBox && lessonBox.y + lessonBox.height <= termBox.y + 1, 'on a phone the lesson pane is not above the terminal');
    await page.setViewportSize({ width: 1366, height: 768 });
    await closeSession(page);
  });
} else {
  console.log('     (no docker lesson offered: lesson steps skipped)');
}

await step('no errors in the browser console', async () => {
  const real = consoleErrors.filter((e) => !/WebGL|webgl|favicon|404 \(Not Found\)/i.test(e));
  assert(real.length === 0, `${real.length} errors, the first ones:\n${real.slice(0, 8).join('\n')}`);
});

await browser.close();
mock?.kill('SIGTERM');
console.log(`screenshots in ${artifacts}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
