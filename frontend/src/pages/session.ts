// The session page /s/{id}: header (countdown, Extend, language, Close), the lesson pane
// beside the terminal tabs in a resizable split, session polling (instances starting,
// expiry, the session vanishing), and the window.__drydock hooks the browser tests read.

import { api, ApiError, errorText, forgetToken, type Session } from '../api';
import { h, replaceChildren } from '../dom';
import { t } from '../i18n';
import { langSwitch } from '../lang-switch';
import { navigate, type Cleanup } from '../router';
import { startCountdown } from '../session/countdown';
import { LessonPane } from '../session/lesson-pane';
import { makeSplit } from '../session/split';
import { TerminalTabs } from '../session/terminal-tabs';
import { installTestHooks } from '../test-hooks';

const POLL_STARTING_MS = 1000;
const POLL_IDLE_MS = 10_000;

export async function mountSession(id: string, root: HTMLElement): Promise<Cleanup> {
  let alive = true;
  const page = h('div', { class: 'session-page' }, h('p', { class: 'loading' }, t('sessionLoading')));
  root.append(page);

  let session: Session;
  try {
    session = await api.session(id);
  } catch (e) {
    showGone(page, e);
    return () => undefined;
  }
  if (!alive) return () => undefined;

  let pollTimer: ReturnType<typeof setTimeout> | null = null;
  const tabs = new TerminalTabs(id, () => refresh());
  const timeLeft = h('span', { class: 'countdown', 'aria-live': 'off' });
  const notice = h('span', { class: 'header-notice', role: 'status', 'aria-live': 'polite' });
  const extendBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'extend' }, t('extend'));
  const closeBtn = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'close' }, t('close'));

  extendBtn.addEventListener('click', async () => {
    extendBtn.disabled = true;
    try {
      const res = await api.extend(id);
      if (res && typeof res.expires_at === 'string') session.expires_at = res.expires_at;
      else await refresh();
      notice.textContent = t('extended');
      setTimeout(() => (notice.textContent = ''), 3000);
    } catch (e) {
      notice.textContent = t('requestFailed', { error: errorText(e) });
    } finally {
      extendBtn.disabled = false;
    }
  });
  closeBtn.addEventListener('click', async () => {
    if (!confirm(t('closeConfirm'))) return;
    closeBtn.disabled = true;
    // Stop the terminals first: they must not try to reconnect to instances being deleted.
    cleanup();
    try {
      await api.closeSession(id);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        alert(t('requestFailed', { error: errorText(e) }));
        navigate(location.pathname, true);
        return;
      }
    }
    forgetToken(id);
    navigate('/');
  });

  const header = h(
    'header',
    { class: 'session-header' },
    h('a', { class: 'brand', href: '/', 'aria-label': `Drydock — ${t('back')}` }, 'Drydock'),
    h('span', { class: 'session-meta' }, session.template),
    notice,
    h('span', { class: 'spacer' }),
    h('span', { class: 'time-left' }, h('span', { class: 'label' }, t('timeLeft'), ' '), timeLeft),
    extendBtn,
    langSwitch(() => location.reload()),
    closeBtn,
  );

  const workspace = h('main', { class: 'workspace' });
  let lessonPane: LessonPane | null = null;
  if (session.lesson) {
    lessonPane = new LessonPane(id, session.lesson, (cmd) => tabs.run(cmd));
    const { handle } = makeSplit(workspace, t('resizePanes'));
    workspace.classList.add('with-lesson');
    workspace.append(lessonPane.element, handle, tabs.element);
    const pane = lessonPane;
    void pane.load().then(() => pane.setProgress(session.progress));
  } else {
    workspace.append(tabs.element);
  }
  replaceChildren(page, header, workspace);
  document.title = `Drydock — ${session.template}`;

  const stopCountdown = startCountdown(timeLeft, () => session.expires_at, () => schedule(0));
  tabs.sync(session.instances);
  const removeHooks = installTestHooks({ sessionId: id, tabs });
  const onWinResize = () => tabs.fit();
  window.addEventListener('resize', onWinResize);

  /** Fetches the session, syncs the tabs and schedules the next poll (fast while starting). */
  async function refresh(): Promise<void> {
    try {
      const s = await api.session(id);
      if (!alive) return;
      session = { ...session, ...s };
      tabs.sync(session.instances);
      lessonPane?.setProgress(session.progress);
    } catch (e) {
      if (alive && e instanceof ApiError && e.status === 404) {
        cleanup();
        showGone(page, e);
        return;
      }
    }
    schedule(session.instances.some((i) => i.state === 'starting') ? POLL_STARTING_MS : POLL_IDLE_MS);
  }

  function schedule(ms: number): void {
    if (pollTimer) clearTimeout(pollTimer);
    if (alive) pollTimer = setTimeout(() => void refresh(), ms);
  }
  schedule(session.instances.some((i) => i.state === 'starting') ? POLL_STARTING_MS : POLL_IDLE_MS);

  function cleanup(): void {
    if (!alive) return;
    alive = false;
    if (pollTimer) clearTimeout(pollTimer);
    stopCountdown();
    removeHooks();
    window.removeEventListener('resize', onWinResize);
    tabs.dispose();
  }
  return cleanup;
}

function showGone(page: HTMLElement, e: unknown): void {
  const gone = e instanceof ApiError && (e.status === 404 || e.status === 401 || e.status === 403);
  replaceChildren(
    page,
    h(
      'div',
      { class: 'gone', role: 'alert' },
      h('h1', {}, 'Drydock'),
      h('p', {}, gone ? t('sessionGone') : t('requestFailed', { error: errorText(e) })),
      h('p', {}, h('a', { href: '/', onclick: (ev: Event) => (ev.preventDefault(), navigate('/')) }, t('back'))),
    ),
  );
}
