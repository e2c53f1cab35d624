// Browser test of the instructor pages against a running server (DRYDOCK_URL, with
// DRYDOCK_ADMIN_TOKEN its admin token): sign-in (a wrong token is refused, the right one
// signs in), creating a workshop from the form, the dashboard (code, join link), a participant
// joining in a second browser context who appears live on the dashboard, their terminal seen
// read-only (what the instructor types is not sent), a rejoin returning to the same session,
// ending the workshop. Screenshots go to $DRYDOCK_ARTIFACTS. Last line: `N passed, N failed`.
// Usage: DRYDOCK_URL=http://127.0.0.1:18080 DRYDOCK_ADMIN_TOKEN=… node tests/dashboard-e2e.mjs

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, requireChromium } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const base = (process.env.DRYDOCK_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
const adminToken = process.env.DRYDOCK_ADMIN_TOKEN ?? '';
const artifacts = process.env.DRYDOCK_ARTIFACTS ?? path.resolve(here, '../test-artifacts');
const READY_MS = Number(process.env.DRYDOCK_E2E_READY_MS ?? 180_000);
mkdirSync(artifacts, { recursive: true });

let passed = 0;
let failed = 0;

async function step(name, fn) {
  const began = Date.now();
  try {
    await fn();
    passed++;
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

requireChromium();
if (!adminToken) {
  console.log('FAIL DRYDOCK_ADMIN_TOKEN is not set: the admin token of the server at DRYDOCK_URL');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
console.log(`testing ${base}`);

const browser = await launchChromium();
const instructor = await browser.newContext({ viewport: { width: 1366, height: 800 } });
const participant = await browser.newContext({ viewport: { width: 1280, height: 760 } });
const page = await instructor.newPage();
const consoleErrors = [];
for (const p of [page]) {
  p.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  p.on('pageerror', (e) => consoleErrors.push(String(e)));
}
await page.goto(`${base}/`);
await page.evaluate(() => localStorage.setItem('drydock.lang', 'en'));

const title = `Browser workshop ${new Date().toISOString().slice(11, 19)}`;
let workshopId = null;
let joinUrl = null;
let sessionId = null;
let student = null;

await step('sign-in page: a wrong token is refused with a clear message', async () => {
  await page.goto(`${base}/admin`);
  const field = page.getByLabel('Admin token');
  await field.waitFor({ timeout: 15_000 });
  await field.fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor({ timeout: 10_000 });
  const text = await alert.textContent();
  assert(/wrong admin token/.test(text), `the page says "${text}"`);
  const cookies = await instructor.cookies();
  assert(!cookies.some((c) => c.name === 'drydock_admin'), 'a cookie was set for a wrong token');
});

await step('signing in sets an HttpOnly SameSite=Strict cookie and opens the workshop list', async () => {
  await page.getByLabel('Admin token').fill(adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/admin/workshops`, { timeout: 15_000 });
  await page.getByRole('heading', { name: 'Workshops', level: 1 }).waitFor();
  const cookie = (await instructor.cookies()).find((c) => c.name === 'drydock_admin');
  assert(cookie, 'no drydock_admin cookie');
  assert(cookie.httpOnly && cookie.sameSite === 'Strict', `cookie flags: ${JSON.stringify(cookie)}`);
  assert(cookie.value !== adminToken, 'the cookie is the token itself');
  assert(!(await page.evaluate(() => document.cookie)).includes('drydock_admin'), 'the cookie is readable from scripts');
});

const created = await step('create a workshop from the form', async () => {
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Lesson', { exact: true }).selectOption('whalesay');
  await page.getByLabel('Seats').fill('2');
  await page.getByLabel('Session length (minutes)').fill('30');
  await page.getByLabel('Machines started in advance').fill('1');
  await page.screenshot({ path: path.join(artifacts, 'workshops-list.png'), fullPage: true });
  await page.getByRole('button', { name: 'Create workshop' }).click();
  await page.waitForURL(/\/admin\/workshops\/[0-9a-f]+$/, { timeout: 30_000 });
  workshopId = new URL(page.url()).pathname.split('/').pop();
  await page.getByRole('heading', { name: title, level: 1 }).waitFor();
  const code = (await page.getByTestId('join-code').textContent()).trim();
  assert(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/.test(code), `join code "${code}"`);
  joinUrl = await page.getByLabel('Join link').inputValue();
  assert(joinUrl.endsWith(`/w/${code}`), `join link ${joinUrl}`);
  await page.getByRole('button', { name: 'Copy link' }).waitFor();
  await page.getByTestId('no-participants').waitFor();
  await page.getByTestId('live-state').filter({ hasText: 'Live' }).waitFor({ timeout: 15_000 });
});

if (created) {
  await step('a participant joins in another browser and appears live on the dashboard', async () => {
    student = await participant.newPage();
    await student.goto(`${base}/`);
    await student.evaluate(() => localStorage.setItem('drydock.lang', 'en'));
    // The link as the instructor shares it, on the server's own origin.
    await student.goto(`${base}${new URL(joinUrl).pathname}`);
    await student.getByRole('heading', { name: title }).waitFor({ timeout: 15_000 });
    await student.getByLabel('Your name').fill('Ada Lovelace');
    await student.screenshot({ path: path.join(artifacts, 'join-page.png') });
    const t0 = Date.now();
    await student.getByRole('button', { name: 'Join' }).click();
    await student.waitForURL(/\/s\/[0-9a-f]{16}$/, { timeout: READY_MS });
    sessionId = new URL(student.url()).pathname.split('/').pop();
    console.log(`     joined in ${Date.now() - t0} ms`);
    const row = page.locator(`tr[data-session="${sessionId}"]`);
    await row.waitFor({ timeout: 15_000 });
    assert((await row.getByRole('rowheader').textContent()) === 'Ada Lovelace', 'name in the row');
    assert(/1 of 2 seats taken/.test(await page.getByTestId('seats').textContent()), 'seat count');
    await student.waitForFunction(() => window.__drydock?.terminalState() === 'open', null, { timeout: READY_MS });
    await row.locator('td.machine').filter({ hasText: 'node1: ready' }).waitFor({ timeout: READY_MS });
    await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
    await student.screenshot({ path: path.join(artifacts, 'participant-session.png') });
  });

  await step('a step check shows as a tick on the dashboard, live', async () => {
    const r = await student.evaluate(async (id) => {
      const res = await fetch(`/api/v1/sessions/${id}/lesson/steps/1/check`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${sessionStorage.getItem(`drydock.token.${id}`)}` },
      });
      return res.status;
    }, sessionId);
    assert(r === 200, `check answered ${r}`);
    // Step 2 ("images") was checked, not passed: a cross; step 1 not checked.
    const cell = page.locator(`tr[data-session="${sessionId}"] td.step[data-step="1"]`);
    await cell.and(page.locator('[data-state="tried"]')).waitFor({ timeout: 15_000 });
    assert((await page.locator(`tr[data-session="${sessionId}"] td.step[data-step="0"]`).getAttribute('data-state')) === 'none', 'step 1 untouched');
  });

  await step("the instructor sees the participant's terminal read-only", async () => {
    await page.getByRole('button', { name: 'View terminal: Ada Lovelace' }).click();
    const dialog = page.getByRole('dialog', { name: 'Terminal of Ada Lovelace (read-only)' });
    await dialog.waitFor({ timeout: 10_000 });
    await page.waitForFunction(() => window.__drydockDashboard?.viewState() === 'open', null, { timeout: 30_000 });
    await student.locator('.term-panel:not([hidden]) .xterm').click();
    await student.keyboard.type('echo watched-$((6*7))');
    await student.keyboard.press('Enter');
    await page.waitForFunction(() => /^watched-42\s*$/m.test(window.__drydockDashboard?.viewText() ?? ''), null, { timeout: 30_000 });
    // Typing in the view sends nothing.
    await dialog.locator('.xterm').click();
    await page.keyboard.type('echo typed-by-$((1+1))-instructor');
    await page.keyboard.press('Enter');
    await page.waitForTimeout(1500);
    const seen = await student.evaluate(() => window.__drydock.terminalText());
    assert(!/typed-by/.test(seen), `the instructor's typing reached the shell:\n${seen}`);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-view-terminal.png') });
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
  });

  await step('rejoining from the same browser returns to the same session', async () => {
    await student.goto(`${base}${new URL(joinUrl).pathname}`);
    await student.waitForURL(`${base}/s/${sessionId}`, { timeout: 30_000 });
    await student.waitForFunction(() => window.__drydock?.terminalState() === 'open', null, { timeout: 60_000 });
    const rows = await page.locator('tr[data-session]').count();
    assert(rows === 1, `${rows} participant rows after a rejoin`);
  });

  await step('results export and ending the workshop', async () => {
    const csv = await page.evaluate(async (id) => (await fetch(`/api/v1/workshops/${id}/results.csv`)).text(), workshopId);
    assert(/^\uFEFF?name,joined_at,step 1 pull passed/.test(csv) && /\nAda Lovelace,/.test(csv), `CSV:\n${csv}`);
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'End workshop' }).click();
    await page.getByTestId('ws-status').filter({ hasText: 'ended' }).waitFor({ timeout: 60_000 });
    await page.locator(`tr[data-session="${sessionId}"].inactive`).waitFor({ timeout: 15_000 });
    const status = await student.evaluate(async (id) => (await fetch(`/api/v1/sessions/${id}`)).status, sessionId);
    assert(status === 404, `the participant's session still answers ${status}`);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-ended.png'), fullPage: true });
  });
}

await step('the dashboard in Chinese', async () => {
  if (!workshopId) throw new Error('no workshop');
  await page.getByRole('button', { name: '中文' }).click();
  await page.getByRole('heading', { name: '学员' }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: path.join(artifacts, 'dashboard-zh.png'), fullPage: true });
  await page.evaluate(() => localStorage.setItem('drydock.lang', 'en'));
});

await step('no errors in the instructor page console', async () => {
  const real = consoleErrors.filter((e) => !/WebGL|webgl|favicon|401|404 \(Not Found\)/i.test(e));
  assert(real.length === 0, `${real.length} errors, the first ones:\n${real.slice(0, 8).join('\n')}`);
});

await browser.close();
console.log(`screenshots in ${artifacts}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
