// The resizable split between the lesson pane and the terminal pane: a drag handle that is
// also a keyboard-operable separator (arrow keys, Home/End), remembering the ratio.

import { h } from '../dom';

const MIN = 15;
const MAX = 85;
const STORAGE_KEY = 'drydock.split';

export function makeSplit(container: HTMLElement, label: string): { handle: HTMLElement } {
  let ratio = Number(localStorage.getItem(STORAGE_KEY)) || 40;
  const handle = h('div', {
    class: 'split-handle',
    role: 'separator',
    tabindex: 0,
    'aria-orientation': 'vertical',
    'aria-label': label,
    'aria-valuemin': MIN,
    'aria-valuemax': MAX,
  });

  function apply(r: number): void {
    ratio = Math.round(Math.max(MIN, Math.min(MAX, r)) * 10) / 10;
    container.style.setProperty('--split', `${ratio}%`);
    handle.setAttribute('aria-valuenow', String(Math.round(ratio)));
    try {
      localStorage.setItem(STORAGE_KEY, String(ratio));
    } catch {
      /* not remembered */
    }
  }

  handle.addEventListener('pointerdown', (ev) => {
    ev.preventDefault();
    handle.setPointerCapture(ev.pointerId);
    container.classList.add('dragging');
  });
  handle.addEventListener('pointermove', (ev) => {
    if (!handle.hasPointerCapture(ev.pointerId)) return;
    const rect = container.getBoundingClientRect();
    if (rect.width > 0) apply(((ev.clientX - rect.left) / rect.width) * 100);
  });
  const end = (ev: PointerEvent) => {
    if (handle.hasPointerCapture(ev.pointerId)) handle.releasePointerCapture(ev.pointerId);
    container.classList.remove('dragging');
  };
  handle.addEventListener('pointerup', end);
  handle.addEventListener('pointercancel', end);
  handle.addEventListener('keydown', (ev) => {
    const step = ev.shiftKey ? 10 : 5;
    const next: Record<string, number> = { ArrowLeft: ratio - step, ArrowRight: ratio + step, ArrowUp: ratio - step, ArrowDown: ratio + step, Home: MIN, End: MAX };
    if (ev.key in next) {
      ev.preventDefault();
      apply(next[ev.key]);
    }
  });
  apply(ratio);
  return { handle };
}
