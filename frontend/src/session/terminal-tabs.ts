// The terminal pane: one tab per instance (node1, node2 …) with add/remove, a terminal per
// ready instance (kept alive while hidden), placeholders for starting or failed ones, and the
// open-port links of the active tab.

import { api, errorText, type Instance } from '../api';
import { h, replaceChildren } from '../dom';
import { t } from '../i18n';
import { InstanceTerminal } from '../terminal/instance-terminal';
import { PortsBar } from './ports';

interface Tab {
  instance: Instance;
  button: HTMLButtonElement;
  item: HTMLElement;
  panel: HTMLElement;
  terminal: InstanceTerminal | null;
}

export class TerminalTabs {
  readonly element: HTMLElement;
  private readonly tablist: HTMLElement;
  private readonly panels: HTMLElement;
  private readonly addBtn: HTMLButtonElement;
  private readonly ports: PortsBar;
  private readonly notice = h('div', { class: 'tabs-notice', role: 'status', 'aria-live': 'polite' });
  private readonly tabs = new Map<string, Tab>();
  private active: string | null = null;

  constructor(
    private readonly sessionId: string,
    private readonly refresh: () => Promise<void>,
  ) {
    this.tablist = h('div', { class: 'tablist', role: 'tablist', 'aria-label': t('instances') });
    this.addBtn = h('button', { type: 'button', class: 'tab-add', 'aria-label': t('addInstance'), title: t('addInstance') }, '+');
    this.addBtn.addEventListener('click', () => void this.add());
    this.panels = h('div', { class: 'term-panels' });
    this.ports = new PortsBar(sessionId);
    this.element = h(
      'section',
      { class: 'term-pane' },
      h('div', { class: 'tabbar' }, this.tablist, this.addBtn, this.notice),
      this.panels,
      this.ports.element,
    );
  }

  /** Brings the tabs in line with the session's instance list. */
  sync(instances: Instance[]): void {
    const names = new Set(instances.map((i) => i.name));
    for (const [name, tab] of this.tabs) if (!names.has(name)) this.drop(name, tab);
    for (const inst of instances) {
      const tab = this.tabs.get(inst.name) ?? this.create(inst);
      tab.instance = inst;
      this.updatePanel(tab);
    }
    const removable = this.tabs.size > 1;
    for (const tab of this.tabs.values()) tab.item.classList.toggle('removable', removable);
    if (!this.active || !this.tabs.has(this.active)) {
      const first = instances[0]?.name;
      if (first) this.select(first);
    } else {
      this.syncPorts();
    }
  }

  select(name: string, focusTerminal = true): void {
    this.active = name;
    for (const [n, tab] of this.tabs) {
      const on = n === name;
      tab.button.setAttribute('aria-selected', String(on));
      tab.button.tabIndex = on ? 0 : -1;
      tab.panel.hidden = !on;
      if (on) this.ensureTerminal(tab);
      if (on && tab.terminal) {
        tab.terminal.show(true);
        if (!focusTerminal) tab.button.focus();
      }
    }
    this.syncPorts();
  }

  /** Polls ports of the active instance once it is ready (a starting one has none to report). */
  private syncPorts(): void {
    const tab = this.active ? this.tabs.get(this.active) : undefined;
    this.ports.setInstance(tab && tab.instance.state === 'ready' ? tab.instance.name : null);
  }

  /** Types a command (byte for byte, lines joined with \n) and Enter into the active terminal. */
  run(command: string): void {
    const term = this.activeTerminal();
    if (!term) return;
    term.type(command + '\r');
    term.focus();
  }

  activeTerminal(): InstanceTerminal | null {
    return (this.active && this.tabs.get(this.active)?.terminal) || null;
  }

  activeName(): string | null {
    return this.active;
  }

  fit(): void {
    this.activeTerminal()?.fit();
  }

  dispose(): void {
    this.ports.stop();
    for (const tab of this.tabs.values()) tab.terminal?.dispose();
    this.tabs.clear();
  }

  private create(inst: Instance): Tab {
    const id = `tab-${inst.name}`;
    const button = h('button', { type: 'button', role: 'tab', id, class: 'tab', 'aria-controls': `panel-${inst.name}`, 'aria-selected': 'false' }, inst.name);
    button.addEventListener('click', () => this.select(inst.name));
    button.addEventListener('keydown', (ev) => this.tabKey(ev, inst.name));
    const remove = h('button', { type: 'button', class: 'tab-remove', 'aria-label': t('removeInstance', { name: inst.name }), title: t('removeInstance', { name: inst.name }) }, '×');
    remove.addEventListener('click', () => void this.remove(inst.name));
    const item = h('div', { class: 'tab-item' }, button, remove);
    const panel = h('div', { class: 'term-panel', role: 'tabpanel', id: `panel-${inst.name}`, 'aria-labelledby': id, hidden: true });
    this.tablist.append(item);
    this.panels.append(panel);
    const tab: Tab = { instance: inst, button, item, panel, terminal: null };
    this.tabs.set(inst.name, tab);
    return tab;
  }

  private updatePanel(tab: Tab): void {
    const { instance } = tab;
    tab.item.dataset.state = instance.state;
    if (instance.state === 'ready') {
      // xterm measures its container, so a terminal is created when its tab is first shown.
      if (!tab.terminal && this.active === instance.name) this.ensureTerminal(tab);
    } else if (!tab.terminal) {
      const msg = instance.state === 'failed' ? t('instanceFailed', { name: instance.name }) : t('instanceStarting', { name: instance.name });
      replaceChildren(tab.panel, h('div', { class: `term-placeholder state-${instance.state}` }, instance.state === 'starting' && h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ', msg, instance.error ? ` ${instance.error}` : ''));
    }
  }

  private ensureTerminal(tab: Tab): void {
    if (tab.terminal || tab.instance.state !== 'ready') return;
    tab.panel.textContent = '';
    tab.terminal = new InstanceTerminal(this.sessionId, tab.instance.name);
    tab.panel.append(tab.terminal.element);
    tab.terminal.start();
  }

  private drop(name: string, tab: Tab): void {
    tab.terminal?.dispose();
    tab.item.remove();
    tab.panel.remove();
    this.tabs.delete(name);
    if (this.active === name) {
      this.active = null;
      const first = this.tabs.keys().next();
      if (!first.done) this.select(first.value);
    }
  }

  private tabKey(ev: KeyboardEvent, name: string): void {
    const names = [...this.tabs.keys()];
    const i = names.indexOf(name);
    const to: Record<string, number> = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: names.length - 1 };
    if (!(ev.key in to)) return;
    ev.preventDefault();
    const next = names[(to[ev.key] + names.length) % names.length];
    this.select(next, false);
  }

  private async add(): Promise<void> {
    this.addBtn.disabled = true;
    this.notice.textContent = '';
    const before = new Set(this.tabs.keys());
    try {
      await api.addInstance(this.sessionId);
      await this.refresh();
      const added = [...this.tabs.keys()].filter((n) => !before.has(n));
      if (added.length > 0) this.select(added[added.length - 1]);
    } catch (e) {
      this.notice.textContent = t('requestFailed', { error: errorText(e) });
    } finally {
      this.addBtn.disabled = false;
    }
  }

  private async remove(name: string): Promise<void> {
    if (!confirm(t('removeConfirm', { name }))) return;
    const tab = this.tabs.get(name);
    if (!tab) return;
    // Stop the terminal first: it must not try to reconnect to an instance being deleted.
    tab.terminal?.dispose();
    tab.terminal = null;
    tab.panel.textContent = '';
    try {
      await api.removeInstance(this.sessionId, name);
      if (this.tabs.get(name) === tab) this.drop(name, tab);
    } catch (e) {
      this.notice.textContent = t('requestFailed', { error: errorText(e) });
      if (this.active === name) this.ensureTerminal(tab);
    }
    await this.refresh();
  }
}
