// Open-port links of the active instance: polls GET …/instances/{name}/ports every 2 s while
// the page is visible and links each port to the preview proxy /p/{id}/{name}/{port}/.

import { api, portUrl, type Port } from '../api';
import { h, replaceChildren } from '../dom';
import { t } from '../i18n';

const POLL_MS = 2000;

export class PortsBar {
  readonly element = h('div', { class: 'ports', 'aria-label': t('openPorts') });
  private instance: string | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private last = '';
  private stopped = false;

  constructor(private readonly sessionId: string) {}

  setInstance(name: string | null): void {
    if (name === this.instance) return;
    this.instance = name;
    this.last = '';
    this.render([]);
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.poll(), ms);
  }

  private async poll(): Promise<void> {
    const name = this.instance;
    if (name && document.visibilityState === 'visible') {
      try {
        const ports = await api.ports(this.sessionId, name);
        if (name === this.instance) this.render(Array.isArray(ports) ? ports : []);
      } catch {
        /* keep the last list; the next poll may succeed */
      }
    }
    this.schedule(POLL_MS);
  }

  private render(ports: Port[]): void {
    const sorted = [...new Set(ports.map((p) => p.port))].sort((a, b) => a - b);
    const key = `${this.instance}:${sorted.join(',')}`;
    if (key === this.last) return;
    this.last = key;
    const name = this.instance ?? '';
    replaceChildren(
      this.element,
      h('span', { class: 'ports-label' }, t('openPorts'), ':'),
      sorted.length === 0
        ? h('span', { class: 'muted' }, t('noPorts'))
        : sorted.map((port) =>
            h(
              'a',
              { class: 'port-link', href: portUrl(this.sessionId, name, port), target: '_blank', rel: 'noopener', 'aria-label': t('portLink', { port, name }) },
              String(port),
            ),
          ),
    );
  }
}
