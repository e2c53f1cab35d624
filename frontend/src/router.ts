// Client-side routing: `/` is the start page, `/s/{id}` a session page, the workshop pages
// (src/workshops/routes.ts: `/admin…`, `/w/{code}`). Pages mount into
// #app and return a cleanup function that runs before the next page mounts.

import { workshopMount } from './workshops/routes';

export type Cleanup = () => void;
type Mount = (root: HTMLElement) => Cleanup | Promise<Cleanup>;

let cleanup: Cleanup | null = null;
let renderSeq = 0;

export function sessionIdFromPath(path: string): string | null {
  const m = /^\/s\/([^/]+)\/?$/.exec(path);
  return m ? decodeURIComponent(m[1]) : null;
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  void render();
}

export async function render(): Promise<void> {
  const seq = ++renderSeq;
  const root = document.getElementById('app')!;
  cleanup?.();
  cleanup = null;
  root.textContent = '';
  const id = sessionIdFromPath(location.pathname);
  const workshopPage = await workshopMount(location.pathname);
  let mount: Mount;
  if (workshopPage) {
    mount = workshopPage;
  } else if (id) {
    mount = (await import('./pages/session')).mountSession.bind(null, id);
  } else {
    mount = (await import('./pages/start')).mountStart;
  }
  if (seq !== renderSeq) return;
  const c = await mount(root);
  if (seq !== renderSeq) c();
  else cleanup = c;
}

window.addEventListener('popstate', () => void render());
