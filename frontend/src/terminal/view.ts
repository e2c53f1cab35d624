// The xterm.js terminal widget: creates the Terminal with the fit, unicode11 (CJK width) and
// WebGL addons (falling back to the DOM renderer when WebGL fails or its context is lost),
// keeps it fitted to its container, and handles Ctrl+Shift+C / Ctrl+Shift+V and
// Ctrl+C-copies-only-with-a-selection.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import '@xterm/xterm/css/xterm.css';

export interface ViewOptions {
  onData: (data: string) => void;
  onResize: (cols: number, rows: number) => void;
  label: string;
}

export class TerminalView {
  readonly term: Terminal;
  private readonly fitAddon = new FitAddon();
  private readonly observer: ResizeObserver;
  private fitQueued = false;
  private disposed = false;

  constructor(
    readonly element: HTMLElement,
    opts: ViewOptions,
  ) {
    this.term = new Terminal({
      allowProposedApi: true,
      cursorBlink: true,
      scrollback: 5000,
      fontSize: 14,
      fontFamily: '"DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, "Noto Sans Mono CJK SC", monospace',
      theme: { background: '#111318', foreground: '#e6e6e6', cursor: '#f5f5f5', selectionBackground: '#3b5b94' },
    });
    this.term.loadAddon(this.fitAddon);
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    this.term.attachCustomKeyEventHandler((ev) => this.onKey(ev));
    this.term.onData(opts.onData);
    this.term.onResize(({ cols, rows }) => opts.onResize(cols, rows));
    this.term.open(element);
    this.term.textarea?.setAttribute('aria-label', opts.label);
    void this.loadWebgl();
    this.observer = new ResizeObserver(() => this.queueFit());
    this.observer.observe(element);
    this.queueFit();
  }

  /** Fits the terminal to its container (on the next frame, coalesced). */
  queueFit(): void {
    if (this.fitQueued || this.disposed) return;
    this.fitQueued = true;
    requestAnimationFrame(() => {
      this.fitQueued = false;
      this.fit();
    });
  }

  fit(): void {
    if (this.disposed || this.element.offsetWidth === 0 || this.element.offsetHeight === 0) return;
    try {
      this.fitAddon.fit();
    } catch {
      /* not measurable yet */
    }
  }

  focus(): void {
    this.term.focus();
  }

  /** The whole buffer (scrollback and screen) as text, one line per row. */
  text(): string {
    const buf = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n').replace(/\n+$/, '');
  }

  dispose(): void {
    this.disposed = true;
    this.observer.disconnect();
    this.term.dispose();
  }

  private async loadWebgl(): Promise<void> {
    try {
      const { WebglAddon } = await import('@xterm/addon-webgl');
      if (this.disposed) return;
      const webgl = new WebglAddon();
      webgl.onContextLoss(() => webgl.dispose());
      this.term.loadAddon(webgl);
    } catch (e) {
      console.info('drydock: WebGL renderer unavailable, using the DOM renderer:', e);
    }
  }

  private onKey(ev: KeyboardEvent): boolean {
    if (ev.type !== 'keydown') return true;
    const ctrlOnly = ev.ctrlKey && !ev.altKey && !ev.metaKey;
    const key = ev.key.toLowerCase();
    if (ctrlOnly && ev.shiftKey && key === 'c') {
      this.copySelection();
      ev.preventDefault();
      return false;
    }
    if (ctrlOnly && ev.shiftKey && key === 'v') {
      // Let the browser fire its native paste event: xterm pastes it (whole) through onData.
      return false;
    }
    if (ctrlOnly && !ev.shiftKey && key === 'c' && this.term.hasSelection()) {
      this.copySelection();
      this.term.clearSelection();
      ev.preventDefault();
      return false;
    }
    return true;
  }

  private copySelection(): void {
    const text = this.term.getSelection();
    if (!text) return;
    navigator.clipboard?.writeText(text).catch(() => {
      /* clipboard denied (insecure context): the native copy event still runs */
    });
  }
}
