// The workshop dashboard /admin/workshops/{id}: the join code (large) and link (with Copy),
// status, seats and machines started in advance; Extend all, End workshop, Export CSV; the
// participants table (name, machine state, time left, one tick per lesson step, View
// terminal / Extend / End), kept live by the server-sent event feed; and a read-only view of
// a participant's terminal in a dialog (the terminal/ view and connection, mode=view).

import '../workshops/workshops.css';
import { errorText } from '../api';
import { h, replaceChildren } from '../dom';
import { t } from '../i18n';
import { navigate, type Cleanup } from '../router';
import { formatLeft } from '../session/countdown';
import { TerminalConnection } from '../terminal/connection';
import { TerminalView } from '../terminal/view';
import { eventsUrl, resultsUrl, viewTerminalUrl, workshopsApi, type Dashboard, type Participant } from '../workshops/api';
import { applyEvent, stepState, type FeedEvent } from '../workshops/state';
import { adminHeader } from './admin';
import { signInIfNeeded, signOutButton, statusText } from './workshops';

const FEED_EVENTS = ['snapshot', 'join', 'check', 'extend', 'end', 'participant', 'workshop'] as const;

/** Read-only hooks for the browser test (nothing the page does not show). */
export interface DashboardHooks {
  participants(): string[];
  viewText(): string;
  viewState(): string | null;
}

declare global {
  interface Window {
    __drydockDashboard?: DashboardHooks;
  }
}

/** A participant's terminal, read-only, in a modal dialog. */
class ReadOnlyTerminal {
  readonly dialog: HTMLDialogElement;
  private view: TerminalView | null = null;
  private conn: TerminalConnection | null = null;
  private readonly host: HTMLElement;
  private readonly status: HTMLElement;

  constructor(
    private readonly p: Participant,
    onClose: () => void,
  ) {
    this.host = h('div', { class: 'term-host view-host' });
    this.status = h('p', { class: 'muted view-status', role: 'status', 'aria-live': 'polite' });
    const closeBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'close-view' }, t('wsCloseDialog'));
    this.dialog = h(
      'dialog',
      { class: 'view-dialog', 'aria-labelledby': 'view-h', 'aria-describedby': 'view-hint', 'data-session': p.session },
      h('div', { class: 'view-head' }, h('h2', { id: 'view-h' }, t('wsViewOf', { name: p.name })), closeBtn),
      h('p', { id: 'view-hint', class: 'muted' }, t('wsViewHint', { name: p.name })),
      this.status,
      this.host,
    );
    closeBtn.addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => {
      this.dispose();
      onClose();
    });
  }

  open(instance: string): void {
    document.body.append(this.dialog);
    this.dialog.showModal();
    const view = new TerminalView(this.host, {
      label: t('wsViewOf', { name: this.p.name }),
      onData: () => undefined, // read-only: nothing typed here is sent
      onResize: () => undefined,
    });
    view.term.options.disableStdin = true;
    this.view = view;
    this.conn = new TerminalConnection({
      url: () => viewTerminalUrl(this.p.session, instance),
      sink: {
        reset: () => view.term.reset(),
        write: (data, done) => view.term.write(data, done),
        size: () => ({ cols: view.term.cols, rows: view.term.rows }),
        exited: () => undefined,
        state: (s) => {
          this.status.textContent = s === 'open' || s === 'replaying' ? '' : s === 'connecting' ? t('connecting') : s === 'reconnecting' ? t('reconnecting') : '';
          this.dialog.dataset.state = s;
        },
      },
    });
    view.fit();
    this.conn.connect();
  }

  text(): string {
    return this.view?.text() ?? '';
  }

  state(): string | null {
    return this.conn?.state ?? null;
  }

  dispose(): void {
    this.conn?.close();
    this.view?.dispose();
    this.conn = null;
    this.view = null;
    this.dialog.remove();
  }
}

export async function mountDashboard(id: string, root: HTMLElement): Promise<Cleanup> {
  let alive = true;
  const page = h('div', { class: 'admin-page dashboard-page' }, h('p', { class: 'loading' }, '…'));
  root.append(page);

  let d: Dashboard;
  try {
    d = await workshopsApi.dashboard(id);
  } catch (e) {
    if (!signInIfNeeded(e)) replaceChildren(page, h('p', { class: 'alert alert-error', role: 'alert' }, t('wsLoadFailed', { error: errorText(e) })));
    return () => (alive = false);
  }
  if (!alive) return () => undefined;

  const live = h('span', { class: 'live-state', role: 'status', 'aria-live': 'polite', 'data-testid': 'live-state' });
  const announce = h('p', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });
  const notice = h('span', { class: 'header-notice', role: 'status', 'aria-live': 'polite' });
  const summary = h('section', { class: 'ws-summary', 'aria-labelledby': 'ws-h' });
  const tableBox = h('section', { class: 'ws-participants', 'aria-labelledby': 'people-h' });
  const rows = new Map<string, HTMLTableRowElement>();
  let viewer: ReadOnlyTerminal | null = null;

  function drawAll(): void {
    document.title = `Drydock — ${d.title}`;
    const allLink = h(
      'a',
      { href: '/admin/workshops', onclick: (ev: Event) => (ev.preventDefault(), navigate('/admin/workshops')) },
      t('wsAll'),
    );
    showLive();
    replaceChildren(page, adminHeader(drawAll, allLink, signOutButton()), h('main', {}, summary, tableBox, announce));
    drawSummary();
    drawTable();
  }

  function drawSummary(): void {
    const url = h('input', { id: 'join-url', class: 'join-url', readonly: true, value: d.join_url, 'data-testid': 'join-url' });
    const copy = h('button', { type: 'button', class: 'btn', 'data-testid': 'copy-link' }, t('wsCopyLink'));
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(d.join_url);
      } catch {
        url.select();
        document.execCommand('copy');
      }
      notice.textContent = t('wsLinkCopied');
      setTimeout(() => (notice.textContent = ''), 3000);
    });
    const ended = d.status === 'ended';
    const extendAll = h('button', { type: 'button', class: 'btn', disabled: ended, 'data-testid': 'extend-all' }, t('wsExtendAll'));
    extendAll.addEventListener('click', () =>
      act(extendAll, async () => {
        const r = await workshopsApi.extendAll(id);
        notice.textContent = t('wsExtendedAll', { n: r.extended });
      }),
    );
    const endAll = h('button', { type: 'button', class: 'btn btn-danger', disabled: ended, 'data-testid': 'end-all' }, t('wsEndAll'));
    endAll.addEventListener('click', () => {
      if (!confirm(t('wsEndAllConfirm'))) return;
      void act(endAll, async () => {
        await workshopsApi.endAll(id);
        await refetch();
      });
    });
    replaceChildren(
      summary,
      h('h1', { id: 'ws-h' }, d.title),
      h('p', { class: 'muted' }, `${d.lesson_title} · ${t('wsStatus')}: `, h('strong', { 'data-testid': 'ws-status' }, statusText(d.status)), ' · ', live),
      h(
        'div',
        { class: 'join-box' },
        h('div', { class: 'join-code-box' }, h('span', { class: 'label', id: 'code-label' }, t('wsCode')), h('span', { class: 'join-code', 'aria-labelledby': 'code-label', 'data-testid': 'join-code' }, d.code)),
        h('div', { class: 'join-link-box' }, h('label', { for: 'join-url' }, t('wsJoinLink')), h('div', { class: 'join-link-row' }, url, copy)),
      ),
      h(
        'p',
        { class: 'ws-counts' },
        h('span', { 'data-testid': 'seats' }, t('wsSeatsTaken', { taken: d.taken, seats: d.seats })),
        d.warm_pool > 0 ? [' · ', h('span', { 'data-testid': 'warm' }, t('wsWarm', { ready: d.warm.ready, starting: d.warm.starting }))] : null,
      ),
      h(
        'div',
        { class: 'ws-actions' },
        extendAll,
        endAll,
        h('a', { class: 'btn', href: resultsUrl(id), download: `workshop-${d.code}-results.csv`, 'data-testid': 'export-csv' }, t('wsExport')),
        notice,
      ),
    );
  }

  function showLive(state?: 'live' | 'reconnecting'): void {
    if (state) live.dataset.state = state;
    live.textContent = live.dataset.state === 'live' ? `● ${t('wsLive')}` : live.dataset.state === 'reconnecting' ? t('wsReconnecting') : '';
  }

  async function act(btn: HTMLButtonElement, f: () => Promise<void>): Promise<void> {
    btn.disabled = true;
    try {
      await f();
    } catch (e) {
      if (!signInIfNeeded(e)) notice.textContent = t('requestFailed', { error: errorText(e) });
    } finally {
      btn.disabled = false;
    }
  }

  function stepHeader(i: number): HTMLElement {
    const s = d.steps[i];
    return h('th', { scope: 'col', class: 'step-col' }, h('abbr', { title: `${t('stepN', { n: i + 1 })}: ${s.title}` }, String(i + 1)));
  }

  function drawTable(): void {
    rows.clear();
    if (d.participants.length === 0) {
      replaceChildren(tableBox, h('h2', { id: 'people-h' }, t('wsParticipants')), h('p', { class: 'muted', 'data-testid': 'no-participants' }, t('wsNoParticipants')));
      return;
    }
    const body = h('tbody', {});
    for (const p of d.participants) {
      const row = renderRow(p);
      rows.set(p.session, row);
      body.append(row);
    }
    replaceChildren(
      tableBox,
      h('h2', { id: 'people-h' }, t('wsParticipants')),
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { class: 'ws-table participants', 'aria-labelledby': 'people-h', 'data-testid': 'participants' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, t('wsColName')),
              h('th', { scope: 'col' }, t('wsColMachine')),
              h('th', { scope: 'col' }, t('wsColTimeLeft')),
              d.steps.map((_, i) => stepHeader(i)),
              h('th', { scope: 'col' }, t('wsColActions')),
            ),
          ),
          body,
        ),
      ),
    );
  }

  function timeLeftText(p: Participant): string {
    return p.active ? formatLeft(Date.parse(p.expires_at) - Date.now()) : t('wsEnded');
  }

  function renderRow(p: Participant): HTMLTableRowElement {
    const machine = p.instances.length
      ? p.instances.map((i) => `${i.name}: ${i.state === 'ready' ? t('stateReady') : i.state === 'failed' ? t('stateFailed') : t('stateStarting')}`).join(', ')
      : t('wsEnded');
    const steps = d.steps.map((s, i) => {
      const st = stepState(p, i);
      const at = p.progress.find((x) => x.step === i)?.checked_at;
      const label =
        st === 'passed'
          ? t('wsStepPassed', { n: i + 1, title: s.title, time: at ? new Date(at).toLocaleTimeString() : '' })
          : st === 'tried'
            ? t('wsStepTried', { n: i + 1, title: s.title })
            : t('wsStepNone', { n: i + 1, title: s.title });
      return h(
        'td',
        { class: `step step-${st}`, 'data-step': i, 'data-state': st },
        h('span', { 'aria-hidden': 'true' }, st === 'passed' ? '✓' : st === 'tried' ? '✗' : '·'),
        h('span', { class: 'sr-only' }, label),
      );
    });
    const ready = p.active && p.instances.some((i) => i.state === 'ready');
    const viewBtn = h(
      'button',
      { type: 'button', class: 'btn', disabled: !ready, 'data-action': 'view', 'aria-label': `${t('wsView')}: ${p.name}` },
      t('wsView'),
    );
    viewBtn.addEventListener('click', () => openViewer(p));
    const extendBtn = h(
      'button',
      { type: 'button', class: 'btn', disabled: !p.active, 'data-action': 'extend', 'aria-label': `${t('wsExtendOne')}: ${p.name}` },
      t('wsExtendOne'),
    );
    extendBtn.addEventListener('click', () =>
      act(extendBtn, async () => {
        upsert(await workshopsApi.extendOne(id, p.session));
      }),
    );
    const endBtn = h(
      'button',
      { type: 'button', class: 'btn btn-danger', disabled: !p.active, 'data-action': 'end', 'aria-label': `${t('wsEndOne')}: ${p.name}` },
      t('wsEndOne'),
    );
    endBtn.addEventListener('click', () => {
      if (!confirm(t('wsEndOneConfirm', { name: p.name }))) return;
      void act(endBtn, () => workshopsApi.endOne(id, p.session));
    });
    return h(
      'tr',
      { 'data-session': p.session, 'data-name': p.name, class: p.active ? '' : 'inactive' },
      h('th', { scope: 'row' }, p.name),
      h('td', { class: 'machine' }, machine),
      h('td', { class: 'time-left', 'data-expires': p.expires_at }, timeLeftText(p)),
      steps,
      h('td', { class: 'row-actions' }, viewBtn, extendBtn, endBtn),
    ) as HTMLTableRowElement;
  }

  /** Replaces one participant's row in place, keeping keyboard focus on the same action. */
  function upsert(p: Participant): void {
    const i = d.participants.findIndex((x) => x.session === p.session);
    if (i >= 0) d.participants[i] = p;
    else d.participants.push(p);
    d.taken = d.participants.filter((x) => x.active).length;
    const old = rows.get(p.session);
    if (!old) {
      drawSummary();
      drawTable();
      return;
    }
    const focused = old.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.action : undefined;
    const row = renderRow(p);
    old.replaceWith(row);
    rows.set(p.session, row);
    if (focused) (row.querySelector(`[data-action="${focused}"]`) as HTMLElement | null)?.focus();
    const seats = summary.querySelector('[data-testid=seats]');
    if (seats) seats.textContent = t('wsSeatsTaken', { taken: d.taken, seats: d.seats });
  }

  function openViewer(p: Participant): void {
    viewer?.dialog.close();
    const instance = p.instances.find((i) => i.state === 'ready')?.name ?? 'node1';
    viewer = new ReadOnlyTerminal(p, () => (viewer = null));
    viewer.open(instance);
  }

  async function refetch(): Promise<void> {
    try {
      d = await workshopsApi.dashboard(id);
      if (alive) {
        drawSummary();
        drawTable();
      }
    } catch (e) {
      signInIfNeeded(e);
    }
  }

  // The live feed.
  const source = new EventSource(eventsUrl(id));
  source.onopen = () => showLive('live');
  source.onerror = () => {
    showLive('reconnecting');
    if (source.readyState === EventSource.CLOSED) void refetch();
  };
  for (const type of FEED_EVENTS) {
    source.addEventListener(type, (ev) => {
      let data: unknown;
      try {
        data = JSON.parse((ev as MessageEvent<string>).data);
      } catch {
        return;
      }
      const applied = applyEvent(d, { type, data } as FeedEvent);
      if (type === 'snapshot' && applied.dashboard) {
        d = applied.dashboard;
        drawSummary();
        drawTable();
      } else if (applied.changed) {
        upsert(applied.changed);
        if (type === 'join') announce.textContent = t('wsJoined', { name: applied.changed.name });
        if (type === 'check') {
          const last = applied.changed.progress.filter((s) => s.passed).sort((a, b) => (a.checked_at ?? '').localeCompare(b.checked_at ?? '')).pop();
          if (last) announce.textContent = t('wsPassedStep', { name: applied.changed.name, n: last.step + 1 });
        }
      }
      if (applied.refetch) void refetch();
    });
  }

  // Warm machines change without feed events (the pool refills in the background).
  const counts = setInterval(async () => {
    if (d.warm_pool === 0 || d.status === 'ended') return;
    try {
      const fresh = await workshopsApi.dashboard(id);
      d.warm = fresh.warm;
      const warm = summary.querySelector('[data-testid=warm]');
      if (warm) warm.textContent = t('wsWarm', { ready: d.warm.ready, starting: d.warm.starting });
    } catch {
      /* the feed's own error handling covers sign-out and outages */
    }
  }, 5000);

  const tick = setInterval(() => {
    for (const p of d.participants) {
      const cell = rows.get(p.session)?.querySelector('.time-left');
      if (cell) cell.textContent = timeLeftText(p);
    }
  }, 1000);

  window.__drydockDashboard = {
    participants: () => d.participants.map((p) => p.name),
    viewText: () => viewer?.text() ?? '',
    viewState: () => viewer?.state() ?? null,
  };

  drawAll();
  return () => {
    alive = false;
    source.close();
    clearInterval(tick);
    clearInterval(counts);
    viewer?.dialog.close();
    delete window.__drydockDashboard;
  };
}
