// One instance's terminal tab body: ties a TerminalView to a TerminalConnection, shows the
// connection status, and after the shell exits prints the notice and reconnects on Enter.

import { terminalUrl } from '../api';
import { h } from '../dom';
import { t } from '../i18n';
import { TerminalConnection, type ConnectionState } from './connection';
import { TerminalView } from './view';

export class InstanceTerminal {
  readonly element: HTMLElement;
  private readonly status: HTMLElement;
  private readonly view: TerminalView;
  private readonly conn: TerminalConnection;

  constructor(sessionId: string, readonly name: string) {
    const host = h('div', { class: 'term-host' });
    this.status = h('div', { class: 'term-status', role: 'status', 'aria-live': 'polite', hidden: true });
    this.element = h('div', { class: 'term-body', 'data-instance': name }, this.status, host);
    this.view = new TerminalView(host, {
      label: t('terminal', { name }),
      onData: (data) => this.onData(data),
      onResize: (cols, rows) => this.conn.resize(cols, rows),
    });
    this.conn = new TerminalConnection({
      url: () => terminalUrl(sessionId, name),
      sink: {
        reset: () => this.view.term.reset(),
        write: (data, done) => this.view.term.write(data, done),
        size: () => ({ cols: this.view.term.cols, rows: this.view.term.rows }),
        exited: (status) => this.view.term.write(`\r\n\x1b[1;33m${t('shellExited', { status })}\x1b[0m\r\n`),
        state: (s) => this.showState(s),
      },
    });
  }

  /** Must run once the element is in the document (xterm measures its container). */
  start(): void {
    this.view.fit();
    this.conn.connect();
  }

  /** Types `text` into the shell as if the user had typed it. */
  type(text: string): void {
    this.onData(text);
  }

  show(visible: boolean): void {
    this.element.hidden = !visible;
    if (visible) {
      this.view.queueFit();
      this.view.focus();
    }
  }

  fit(): void {
    this.view.queueFit();
  }

  focus(): void {
    this.view.focus();
  }

  text(): string {
    return this.view.text();
  }

  selectAll(): void {
    this.view.term.selectAll();
  }

  get state(): ConnectionState {
    return this.conn.state;
  }

  dispose(): void {
    this.conn.close();
    this.view.dispose();
    this.element.remove();
  }

  private onData(data: string): void {
    if (this.conn.exited) {
      if (data.includes('\r')) this.conn.connect();
      return;
    }
    this.conn.sendInput(data);
  }

  private showState(s: ConnectionState): void {
    const text = s === 'connecting' ? t('connecting') : s === 'reconnecting' ? t('reconnecting') : '';
    this.status.textContent = text;
    this.status.hidden = !text;
    this.element.dataset.state = s;
  }
}
