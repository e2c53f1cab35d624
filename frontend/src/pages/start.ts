// The start page: lesson list (GET /lessons, tolerating none or a 404), the language switch,
// the free and (when offered) Kubernetes playground buttons, and session start with
// progress until every instance is ready, with clear messages for full/limited/failed.

import { api, ApiError, errorText, templateInfo, type LessonSummary, type Session, type TemplateInfo } from '../api';
import { h, replaceChildren } from '../dom';
import { lang, t } from '../i18n';
import { langSwitch } from '../lang-switch';
import { navigate, type Cleanup } from '../router';

const POLL_MS = 1000;
const START_TIMEOUT_MS = 5 * 60_000;

export function mountStart(root: HTMLElement): Cleanup {
  let alive = true;
  let starting = false;
  const page = h('div', { class: 'start-page' });
  root.append(page);

  const lessonsBox = h('section', { class: 'lessons', 'aria-labelledby': 'lessons-h' });
  const playBox = h('section', { class: 'playgrounds', 'aria-labelledby': 'play-h' });
  const progress = h('div', { class: 'progress', role: 'status', 'aria-live': 'polite' });

  let lessons: LessonSummary[] | null = null;
  let lessonsError: string | null = null;
  // null while unknown (no /templates endpoint): then the lessons tell what is offered.
  let templates: TemplateInfo[] | null = null;
  const unavailable = (template: string) => templates?.find((x) => x.id === template && !x.available);

  function draw(): void {
    replaceChildren(
      page,
      h(
        'header',
        { class: 'start-header' },
        h('h1', { class: 'brand' }, 'Drydock'),
        langSwitch(() => {
          draw();
          void loadLessons();
        }),
      ),
      h('p', { class: 'tagline' }, t('tagline')),
      progress,
      h('main', { class: 'start-main' }, playBox, lessonsBox),
    );
    drawPlaygrounds();
    drawLessons();
  }

  function drawPlaygrounds(): void {
    const offersK8s = templates
      ? templates.some((x) => x.id === 'kubernetes' && x.available)
      : (lessons ?? []).some((l) => l.template === 'kubernetes');
    replaceChildren(
      playBox,
      h('h2', { id: 'play-h' }, t('playgrounds')),
      h(
        'div',
        { class: 'cards' },
        playCard('docker', t('freePlayground'), t('freePlaygroundHint'), 'start-docker'),
        offersK8s && playCard('kubernetes', t('k8sPlayground'), t('k8sPlaygroundHint'), 'start-kubernetes'),
      ),
    );
  }

  function playCard(template: string, title: string, hint: string, testId: string): HTMLElement {
    return h(
      'button',
      { type: 'button', class: 'card play-card', 'data-testid': testId, onclick: () => void start({ template }) },
      h('span', { class: 'card-title' }, title),
      h('span', { class: 'card-hint' }, hint),
    );
  }

  function drawLessons(): void {
    let body: HTMLElement;
    if (lessons === null && lessonsError === null) body = h('p', { class: 'muted' }, '…');
    else if (lessonsError !== null) body = h('p', { class: 'muted' }, t('lessonsError', { error: lessonsError }));
    else if (lessons!.length === 0) body = h('p', { class: 'muted' }, t('noLessons'));
    else
      body = h(
        'ul',
        { class: 'cards lesson-list' },
        lessons!.map((l) => {
          const steps = typeof l.steps === 'number' ? l.steps : Array.isArray(l.steps) ? l.steps.length : null;
          const meta = [l.template, l.minutes ? t('minutes', { n: l.minutes }) : null, steps ? t('steps', { n: steps }) : null]
            .filter(Boolean)
            .join(' · ');
          const off = unavailable(l.template);
          return h(
            'li',
            {},
            h(
              'button',
              {
                type: 'button',
                class: 'card lesson-card',
                'data-lesson': l.id,
                disabled: !!off,
                title: off ? t('unavailable', { reason: off.reason ?? '' }) : null,
                onclick: () => void start({ template: l.template || 'docker', lesson: l.id, lang: lang() }),
              },
              h('span', { class: 'card-title' }, l.title),
              l.summary ? h('span', { class: 'card-summary' }, l.summary) : null,
              h('span', { class: 'card-hint' }, meta),
              off ? h('span', { class: 'card-hint' }, t('unavailable', { reason: off.reason ?? '' })) : null,
            ),
          );
        }),
      );
    replaceChildren(lessonsBox, h('h2', { id: 'lessons-h' }, t('lessons')), body);
  }

  async function loadLessons(): Promise<void> {
    try {
      const list = await api.lessons(lang());
      lessons = Array.isArray(list) ? list : [];
      lessonsError = null;
    } catch (e) {
      lessons = [];
      lessonsError = e instanceof ApiError && e.status === 404 ? null : errorText(e);
    }
    if (!alive) return;
    drawLessons();
    drawPlaygrounds();
  }

  async function loadTemplates(): Promise<void> {
    try {
      templates = templateInfo(await api.templates());
    } catch {
      templates = null;
    }
    if (alive) drawLessons();
    if (alive) drawPlaygrounds();
  }

  function setBusy(busy: boolean): void {
    starting = busy;
    page.querySelectorAll<HTMLButtonElement>('.card').forEach((b) => {
      const lesson = lessons?.find((l) => l.id === b.dataset.lesson);
      b.disabled = busy || (lesson !== undefined && !!unavailable(lesson.template));
    });
  }

  function showError(message: string, retry: () => void, session?: Session): void {
    replaceChildren(
      progress,
      h(
        'div',
        { class: 'alert alert-error', role: 'alert' },
        h('p', {}, message),
        h(
          'button',
          {
            type: 'button',
            onclick: () => {
              if (session) void api.closeSession(session.id).catch(() => undefined);
              replaceChildren(progress);
              retry();
            },
          },
          t('tryAgain'),
        ),
      ),
    );
  }

  async function start(body: { template: string; lesson?: string; lang?: string }): Promise<void> {
    if (starting) return;
    setBusy(true);
    const began = Date.now();
    replaceChildren(progress, h('p', { class: 'alert' }, t('starting')));
    let session: Session;
    try {
      session = await api.createSession(body);
    } catch (e) {
      setBusy(false);
      const msg =
        e instanceof ApiError && e.status === 503
          ? `${t('serverFull')} (${e.message})`
          : e instanceof ApiError && e.status === 429
            ? t('rateLimited')
            : t('startFailed', { error: errorText(e) });
      showError(msg, () => void start(body));
      return;
    }
    while (alive) {
      drawProgress(session, began);
      const failed = session.instances.find((i) => i.state === 'failed');
      if (failed) {
        setBusy(false);
        showError(t('startFailed', { error: failed.error ?? t('instanceFailed', { name: failed.name }) }), () => void start(body), session);
        return;
      }
      if (session.instances.length > 0 && session.instances.every((i) => i.state === 'ready')) {
        navigate(`/s/${encodeURIComponent(session.id)}`);
        return;
      }
      if (Date.now() - began > START_TIMEOUT_MS) {
        setBusy(false);
        showError(t('startFailed', { error: 'timeout' }), () => void start(body), session);
        return;
      }
      await sleep(POLL_MS);
      try {
        session = { ...session, ...(await api.session(session.id)) };
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) {
          setBusy(false);
          showError(t('startFailed', { error: e.message }), () => void start(body));
          return;
        }
      }
    }
  }

  function drawProgress(s: Session, began: number): void {
    const label: Record<string, string> = { starting: t('stateStarting'), ready: t('stateReady'), failed: t('stateFailed') };
    replaceChildren(
      progress,
      h(
        'div',
        { class: 'alert', 'data-testid': 'start-progress' },
        h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ', t('starting'), ' ', t('elapsed', { s: Math.round((Date.now() - began) / 1000) })),
        h(
          'ul',
          { class: 'instance-states' },
          s.instances.map((i) => h('li', { class: `state-${i.state}` }, t('startingInstance', { name: i.name, state: label[i.state] ?? i.state }))),
        ),
      ),
    );
  }

  draw();
  void loadLessons();
  void loadTemplates();
  document.title = 'Drydock';
  return () => {
    alive = false;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
