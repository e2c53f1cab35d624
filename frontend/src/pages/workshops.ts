// The instructor's workshop list /admin/workshops: their workshops (title, code, status,
// seats) and the form that creates one (title, lesson, seats, session length, machines
// started in advance, optional join window, lesson language). Not signed in: back to /admin.

import '../workshops/workshops.css';
import { api, ApiError, errorText, type LessonSummary } from '../api';
import { h, replaceChildren } from '../dom';
import { lang, t } from '../i18n';
import { navigate, type Cleanup } from '../router';
import { workshopsApi, type Workshop } from '../workshops/api';
import { localToRfc3339 } from '../workshops/state';
import { adminHeader } from './admin';

export function statusText(status: string): string {
  switch (status) {
    case 'scheduled':
      return t('wsStatusScheduled');
    case 'open':
      return t('wsStatusOpen');
    case 'closed':
      return t('wsStatusClosed');
    case 'ended':
      return t('wsStatusEnded');
    default:
      return status;
  }
}

/** Sends the instructor to sign-in when the server says they are not signed in. */
export function signInIfNeeded(e: unknown): boolean {
  if (e instanceof ApiError && e.status === 401) {
    navigate('/admin', true);
    return true;
  }
  return false;
}

export function signOutButton(): HTMLElement {
  return h(
    'button',
    {
      type: 'button',
      class: 'btn',
      'data-testid': 'sign-out',
      onclick: async () => {
        try {
          await workshopsApi.logout();
        } finally {
          navigate('/admin');
        }
      },
    },
    t('wsSignOut'),
  );
}

function field(id: string, label: string, input: HTMLElement, hint?: string): HTMLElement {
  if (hint) input.setAttribute('aria-describedby', `${id}-hint`);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('p', { id: `${id}-hint`, class: 'muted field-hint' }, hint) : null,
  );
}

export async function mountWorkshops(root: HTMLElement): Promise<Cleanup> {
  let alive = true;
  const page = h('div', { class: 'admin-page' });
  root.append(page);
  document.title = `Drydock — ${t('wsWorkshops')}`;

  let list: Workshop[] = [];
  let lessons: LessonSummary[] = [];
  try {
    [list, lessons] = await Promise.all([workshopsApi.list(), api.lessons(lang()).catch(() => [])]);
  } catch (e) {
    if (!signInIfNeeded(e)) replaceChildren(page, h('p', { class: 'alert alert-error', role: 'alert' }, t('wsLoadFailed', { error: errorText(e) })));
    return () => (alive = false);
  }
  if (!alive) return () => undefined;

  const draw = () => {
    const table = list.length
      ? h(
          'table',
          { class: 'ws-table', 'aria-labelledby': 'ws-list-h' },
          h('thead', {}, h('tr', {}, [t('wsFieldTitle'), t('wsCode'), t('wsStatus'), t('wsFieldSeats'), t('wsFieldLesson')].map((c) => h('th', { scope: 'col' }, c)))),
          h(
            'tbody',
            {},
            list.map((w) =>
              h(
                'tr',
                { 'data-workshop': w.id },
                h(
                  'td',
                  {},
                  h(
                    'a',
                    {
                      href: `/admin/workshops/${encodeURIComponent(w.id)}`,
                      onclick: (ev: Event) => (ev.preventDefault(), navigate(`/admin/workshops/${encodeURIComponent(w.id)}`)),
                    },
                    w.title,
                  ),
                ),
                h('td', { class: 'mono' }, w.code),
                h('td', {}, statusText(w.status)),
                h('td', {}, t('wsSeatsTaken', { taken: w.taken, seats: w.seats })),
                h('td', {}, w.lesson_title),
              ),
            ),
          ),
        )
      : h('p', { class: 'muted' }, t('wsNone'));

    const title = h('input', { id: 'ws-title', name: 'title', required: true, maxlength: 100, autocomplete: 'off' });
    const lesson = h(
      'select',
      { id: 'ws-lesson', name: 'lesson', required: true },
      lessons.map((l) => h('option', { value: l.id }, `${l.title} (${l.id})`)),
    );
    const seats = h('input', { id: 'ws-seats', name: 'seats', type: 'number', min: 1, max: 1000, value: 20, required: true });
    const duration = h('input', { id: 'ws-duration', name: 'duration_minutes', type: 'number', min: 1, max: 1440, value: 90, required: true });
    const warm = h('input', { id: 'ws-warm', name: 'warm_pool', type: 'number', min: 0, max: 1000, value: 0 });
    const opens = h('input', { id: 'ws-opens', name: 'opens_at', type: 'datetime-local' });
    const closes = h('input', { id: 'ws-closes', name: 'closes_at', type: 'datetime-local' });
    const wsLang = h(
      'select',
      { id: 'ws-lang', name: 'lang' },
      h('option', { value: 'en', selected: lang() === 'en' }, 'English'),
      h('option', { value: 'zh', selected: lang() === 'zh' }, '中文'),
    );
    const error = h('p', { class: 'alert alert-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'create-workshop' }, t('wsCreate'));
    const form = h(
      'form',
      { class: 'admin-form ws-create', 'aria-labelledby': 'ws-new-h' },
      h('h2', { id: 'ws-new-h' }, t('wsNew')),
      h(
        'div',
        { class: 'fields' },
        field('ws-title', t('wsFieldTitle'), title),
        field('ws-lesson', t('wsFieldLesson'), lesson),
        field('ws-seats', t('wsFieldSeats'), seats),
        field('ws-duration', t('wsFieldDuration'), duration),
        field('ws-warm', t('wsFieldWarm'), warm, t('wsFieldWarmHint')),
        field('ws-lang', t('wsFieldLang'), wsLang),
        field('ws-opens', t('wsFieldOpens'), opens),
        field('ws-closes', t('wsFieldCloses'), closes),
      ),
      submit,
      error,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      submit.textContent = t('wsCreating');
      error.hidden = true;
      try {
        const w = await workshopsApi.create({
          title: title.value,
          lesson: lesson.value,
          seats: Number(seats.value),
          duration_minutes: Number(duration.value),
          warm_pool: Number(warm.value || 0),
          opens_at: localToRfc3339(opens.value) || undefined,
          closes_at: localToRfc3339(closes.value) || undefined,
          lang: wsLang.value,
        });
        if (alive) navigate(`/admin/workshops/${encodeURIComponent(w.id)}`);
      } catch (e) {
        if (signInIfNeeded(e)) return;
        error.textContent = t('wsCreateFailed', { error: errorText(e) });
        error.hidden = false;
        submit.disabled = false;
        submit.textContent = t('wsCreate');
      }
    });
    replaceChildren(
      page,
      adminHeader(draw, signOutButton()),
      h('main', {}, h('h1', { id: 'ws-list-h' }, t('wsWorkshops')), table, form),
    );
  };
  draw();
  return () => (alive = false);
}
