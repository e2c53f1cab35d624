// The time-left display for a session's `expires_at`, ticking every second.

import { t } from '../i18n';

export function formatLeft(ms: number): string {
  if (ms <= 0) return t('expired');
  const s = Math.floor(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return hh > 0 ? `${hh}:${two(mm)}:${two(ss)}` : `${two(mm)}:${two(ss)}`;
}

/** Keeps `el` showing the time left until `expiresAt()`; returns a stop function. */
export function startCountdown(el: HTMLElement, expiresAt: () => string, onExpired: () => void): () => void {
  let fired = false;
  const tick = () => {
    const left = Date.parse(expiresAt()) - Date.now();
    el.textContent = Number.isNaN(left) ? '—' : formatLeft(left);
    el.classList.toggle('warn', left < 5 * 60_000);
    if (left <= 0 && !fired) {
      fired = true;
      onExpired();
    } else if (left > 0) fired = false;
  };
  tick();
  const timer = setInterval(tick, 1000);
  return () => clearInterval(timer);
}
