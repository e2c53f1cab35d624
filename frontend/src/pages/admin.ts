// The instructor sign-in page /admin: one token field. The token goes to the server once
// (POST /api/v1/admin/login), which answers with an HttpOnly cookie; already signed in, the
// page moves on to the workshop list. A server without an admin token says so.

import '../workshops/workshops.css';
import { ApiError, errorText } from '../api';
import { h, replaceChildren } from '../dom';
import { t } from '../i18n';
import { langSwitch } from '../lang-switch';
import { navigate, type Cleanup } from '../router';
import { workshopsApi } from '../workshops/api';

/** The page header of the instructor pages. */
export function adminHeader(onLang: () => void, ...extra: (Node | null)[]): HTMLElement {
  return h(
    'header',
    { class: 'start-header admin-header' },
    h('a', { class: 'brand', href: '/' }, 'Drydock'),
    h('span', { class: 'spacer' }),
    ...extra,
    langSwitch(onLang),
  );
}

export async function mountSignIn(root: HTMLElement): Promise<Cleanup> {
  let alive = true;
  const page = h('div', { class: 'admin-page' });
  root.append(page);
  document.title = `Drydock — ${t('wsSignInTitle')}`;

  let disabled: string | null = null;
  try {
    await workshopsApi.me();
    if (alive) navigate('/admin/workshops', true);
    return () => (alive = false);
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) disabled = e.message;
  }

  const draw = () => {
    const error = h('p', { class: 'alert alert-error', role: 'alert', hidden: true });
    const input = h('input', {
      id: 'admin-token',
      name: 'token',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
      'aria-describedby': 'admin-token-hint',
      disabled: !!disabled,
    });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', disabled: !!disabled }, t('wsSignIn'));
    const form = h(
      'form',
      { class: 'admin-form', 'aria-labelledby': 'signin-h' },
      h('label', { for: 'admin-token' }, t('wsTokenLabel')),
      input,
      h('p', { id: 'admin-token-hint', class: 'muted field-hint' }, t('wsTokenHint')),
      submit,
      error,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      submit.textContent = t('wsSigningIn');
      error.hidden = true;
      try {
        await workshopsApi.login(input.value);
        input.value = '';
        if (alive) navigate('/admin/workshops');
      } catch (e) {
        error.textContent = t('wsSignInFailed', { error: errorText(e) });
        error.hidden = false;
        submit.disabled = false;
        submit.textContent = t('wsSignIn');
        input.focus();
        input.select();
      }
    });
    replaceChildren(
      page,
      adminHeader(draw),
      h('main', {}, h('h1', { id: 'signin-h' }, t('wsSignInTitle')), disabled ? h('p', { class: 'alert alert-error', role: 'alert' }, t('wsDisabled', { error: disabled })) : null, form),
    );
    if (!disabled) input.focus();
  };
  draw();
  return () => (alive = false);
}
