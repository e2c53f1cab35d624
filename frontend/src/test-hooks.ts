// window.__drydock: read-only hooks for the browser tests (terminal text, connection state,
// active instance). Harmless in production: it exposes nothing the page does not show.

import type { TerminalTabs } from './session/terminal-tabs';

export interface DrydockHooks {
  sessionId: string;
  activeInstance(): string | null;
  terminalText(): string;
  terminalState(): string | null;
  run(command: string): void;
  selectAll(): void;
}

declare global {
  interface Window {
    __drydock?: DrydockHooks;
  }
}

export function installTestHooks(ctx: { sessionId: string; tabs: TerminalTabs }): () => void {
  const hooks: DrydockHooks = {
    sessionId: ctx.sessionId,
    activeInstance: () => ctx.tabs.activeName(),
    terminalText: () => ctx.tabs.activeTerminal()?.text() ?? '',
    terminalState: () => ctx.tabs.activeTerminal()?.state ?? null,
    run: (command) => ctx.tabs.run(command),
    selectAll: () => ctx.tabs.activeTerminal()?.selectAll(),
  };
  window.__drydock = hooks;
  return () => {
    if (window.__drydock === hooks) delete window.__drydock;
  };
}
