// The lesson pane: shows one step of the session's lesson at a time (server-rendered HTML),
// previous/next navigation, runnable code blocks that type into the active terminal, copy
// buttons on other code blocks, the step's Check button with pass/fail feedback, and a row
// of step buttons marking the steps whose check passed (the session's `progress`).

import { api, errorText, stepHasCheck, type Lesson, type StepProgress } from '../api';
import { h, replaceChildren } from '../dom';
import { lang, t } from '../i18n';

export class LessonPane {
  readonly element = h('section', { class: 'lesson-pane', 'aria-label': t('lesson') });
  private lesson: Lesson | null = null;
  private step = 0;
  private readonly stepKey: string;
  private readonly passed = new Set<number>();
  private readonly dots = h('nav', { class: 'step-dots', 'aria-label': t('stepList') });

  constructor(
    private readonly sessionId: string,
    private readonly lessonId: string,
    private readonly run: (command: string) => void,
  ) {
    this.stepKey = `drydock.step.${sessionId}`;
    this.step = Number(sessionStorage.getItem(this.stepKey)) || 0;
    this.element.append(h('p', { class: 'muted' }, '…'));
  }

  async load(): Promise<void> {
    try {
      this.lesson = await api.lesson(this.lessonId, lang());
      if (!this.lesson || !Array.isArray(this.lesson.steps)) throw new Error('no steps');
      this.goto(Math.min(this.step, Math.max(0, this.lesson.steps.length - 1)), false);
    } catch (e) {
      replaceChildren(this.element, h('p', { class: 'alert alert-error' }, t('lessonError', { error: errorText(e) })));
    }
  }

  /** Marks the steps the server reports as passed. */
  setProgress(progress: StepProgress[] | undefined): void {
    if (!Array.isArray(progress)) return;
    const before = [...this.passed].join();
    for (const p of progress) if (p.passed) this.passed.add(p.step);
    if ([...this.passed].join() !== before) this.renderDots();
  }

  private renderDots(): void {
    const total = this.lesson?.steps.length ?? 0;
    replaceChildren(
      this.dots,
      Array.from({ length: total }, (_, i) => {
        const done = this.passed.has(i);
        return h(
          'button',
          {
            type: 'button',
            class: `step-dot${done ? ' passed' : ''}`,
            'aria-current': i === this.step ? 'step' : null,
            'aria-label': done ? t('stepPassed', { n: i + 1 }) : t('stepN', { n: i + 1 }),
            title: done ? t('stepPassed', { n: i + 1 }) : t('stepN', { n: i + 1 }),
            onclick: () => this.goto(i),
          },
          done ? '✓' : String(i + 1),
        );
      }),
    );
  }

  private goto(n: number, focus = true): void {
    const lesson = this.lesson!;
    this.step = n;
    sessionStorage.setItem(this.stepKey, String(n));
    const step = lesson.steps[n];
    const total = lesson.steps.length;
    const content = h('div', { class: 'step-content' });
    content.innerHTML = step?.html ?? '';
    // The step's Markdown starts with its `# Title`: show it as the pane heading, once.
    const h1 = content.querySelector('h1');
    const title = step?.title || h1?.textContent?.trim() || lesson.title;
    h1?.remove();
    this.enhanceCode(content);
    const result = h('div', { class: 'check-result', role: 'status', 'aria-live': 'polite' });
    const checkBtn = h('button', { type: 'button', class: 'btn btn-primary check-btn', 'data-testid': 'check' }, t('check'));
    checkBtn.addEventListener('click', () => void this.check(n, checkBtn, result));
    const heading = h('h2', { class: 'step-title', tabindex: -1 }, title);
    replaceChildren(
      this.element,
      h('p', { class: 'lesson-title' }, lesson.title),
      h('p', { class: 'step-count' }, t('stepOf', { n: n + 1, total })),
      this.dots,
      heading,
      content,
      stepHasCheck(step) && h('div', { class: 'check-row' }, checkBtn, result),
      h(
        'nav',
        { class: 'step-nav', 'aria-label': t('lesson') },
        h('button', { type: 'button', class: 'btn', disabled: n === 0, onclick: () => this.goto(n - 1) }, '← ', t('previous')),
        h('button', { type: 'button', class: 'btn', disabled: n >= total - 1, onclick: () => this.goto(n + 1) }, t('next'), ' →'),
      ),
    );
    this.renderDots();
    this.element.scrollTop = 0;
    if (focus) heading.focus();
  }

  private enhanceCode(root: HTMLElement): void {
    root.querySelectorAll('pre').forEach((pre) => {
      const code = pre.querySelector('code');
      const text = (code ?? pre).textContent ?? '';
      if (code?.classList.contains('runnable')) {
        const command = text.replace(/\n+$/, '');
        pre.classList.add('runnable-block');
        pre.setAttribute('role', 'button');
        pre.setAttribute('tabindex', '0');
        pre.setAttribute('aria-label', t('runCommand', { cmd: command }));
        pre.title = t('runCommand', { cmd: command });
        const go = () => {
          this.run(command);
          pre.classList.add('ran');
          setTimeout(() => pre.classList.remove('ran'), 600);
        };
        pre.addEventListener('click', go);
        pre.addEventListener('keydown', (ev) => {
          if (ev.key === 'Enter' || ev.key === ' ') {
            ev.preventDefault();
            go();
          }
        });
      } else {
        const btn = h('button', { type: 'button', class: 'copy-btn' }, t('copy'));
        btn.addEventListener('click', () => {
          void copyText(text).then((ok) => {
            if (!ok) return;
            btn.textContent = `✓ ${t('copied')}`;
            setTimeout(() => (btn.textContent = t('copy')), 1200);
          });
        });
        const wrap = h('div', { class: 'code-wrap' });
        pre.replaceWith(wrap);
        wrap.append(pre, btn);
      }
    });
  }

  private async check(n: number, btn: HTMLButtonElement, out: HTMLElement): Promise<void> {
    btn.disabled = true;
    btn.textContent = t('checking');
    out.className = 'check-result';
    out.textContent = '';
    try {
      const r = await api.check(this.sessionId, n);
      out.className = `check-result ${r.passed ? 'pass' : 'fail'}`;
      if (r.passed && !this.passed.has(n)) {
        this.passed.add(n);
        this.renderDots();
      }
      replaceChildren(out, h('strong', {}, r.passed ? `✓ ${t('passed')}` : `✗ ${t('failed')}`), r.message ? h('pre', { class: 'check-message' }, r.message) : null);
    } catch (e) {
      out.className = 'check-result fail';
      out.textContent = t('requestFailed', { error: errorText(e) });
    } finally {
      btn.disabled = false;
      btn.textContent = t('check');
    }
  }
}

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { class: 'sr-only' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}
