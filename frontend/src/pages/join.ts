// The join page /w/{code}: the workshop's title, lesson and seats, a display-name field and
// Join; joining starts the participant's machine and goes to /s/{session}. A browser that
// already joined (the server's drydock_ws_<code> cookie) goes straight back to its session.
// Full, closed, not-yet-open and unknown workshops say so.

import '../workshops/workshops.css';
import { ApiError, errorText, rememberToken } from '../api';
import { h, replaceChildren } from '../dom';
import { lang, t } from '../i18n';
import { langSwitch } from '../lang-switch';
import { navigate, type Cleanup } from '../router';
import { workshopsApi, type JoinInfo } from '../workshops/api';

export async function mountJoin(code: string, root: HTMLElement): Promise<Cleanup> {
  let alive = true;
  const page = h('div', { class: 'admin-page join-page' }, h('p', { class: 'loading' }, '…'));
  root.append(page);

  const header = (onLang: () => void) =>
    h('header', { class: 'start-header' }, h('a', { class: 'brand', href: '/' }, 'Drydock'), langSwitch(onLang));

  let info: JoinInfo;
  try {
    info = await workshopsApi.joinInfo(code);
  } catch (e) {
    const text = e instanceof ApiError && e.status === 404 ? t('wsJoinNotFound') : t('wsJoinFailed', { error: errorText(e) });
    const draw = () =>
      replaceChildren(page, header(draw), h('main', {}, h('h1', {}, t('wsJoinTitle')), h('p', { class: 'alert alert-error', role: 'alert' }, text)));
    draw();
    return () => (alive = false);
  }
  if (!alive) return () => undefined;
  document.title = `Drydock — ${info.title}`;

  async function go(name: string): Promise<void> {
    const s = await workshopsApi.join(info.code, name, lang());
    rememberToken(s.id, s.token);
    if (alive) navigate(`/s/${encodeURIComponent(s.id)}`);
  }

  if (info.session) {
    replaceChildren(page, h('p', { class: 'loading', role: 'status' }, t('wsRejoining')));
    try {
      await go('');
      return () => (alive = false);
    } catch {
      /* the session ended meanwhile: join anew below */
    }
  }

  const draw = () => {
    const input = h('input', {
      id: 'join-name',
      name: 'name',
      required: true,
      maxlength: 40,
      autocomplete: 'name',
      'aria-describedby': 'join-name-hint',
    });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'join' }, t('wsJoin'));
    const error = h('p', { class: 'alert alert-error', role: 'alert', hidden: !info.refusal }, info.refusal ?? '');
    const status = h('p', { role: 'status', 'aria-live': 'polite', class: 'muted' });
    const form = h(
      'form',
      { class: 'admin-form join-form', 'aria-labelledby': 'join-h' },
      h('label', { for: 'join-name' }, t('wsYourName')),
      input,
      h('p', { id: 'join-name-hint', class: 'muted field-hint' }, t('wsYourNameHint')),
      submit,
      status,
      error,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      status.textContent = t('wsJoining');
      try {
        await go(input.value);
      } catch (e) {
        status.textContent = '';
        error.textContent = t('wsJoinFailed', { error: errorText(e) });
        error.hidden = false;
        submit.disabled = false;
        input.focus();
      }
    });
    replaceChildren(
      page,
      header(draw),
      h(
        'main',
        {},
        h('p', { class: 'muted' }, t('wsJoinTitle')),
        h('h1', { id: 'join-h' }, info.title),
        h('p', {}, t('wsJoinLesson', { title: info.lesson_title })),
        h('p', { class: 'muted' }, t('wsSeatsTaken', { taken: info.taken, seats: info.seats }), ' · ', t('wsJoinMinutes', { n: info.duration_minutes })),
        form,
      ),
    );
    input.focus();
  };
  draw();
  return () => (alive = false);
}
