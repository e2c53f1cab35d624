// The workshop routes of the UI: `/admin` (instructor sign-in), `/admin/workshops` (list and
// create), `/admin/workshops/{id}` (dashboard) and `/w/{code}` (a participant joins). Pages
// load lazily, like the session page.

type Cleanup = () => void;
type Mount = (root: HTMLElement) => Cleanup | Promise<Cleanup>;

export type WorkshopRoute =
  | { page: 'signin' }
  | { page: 'list' }
  | { page: 'dashboard'; id: string }
  | { page: 'join'; code: string };

export function workshopRoute(path: string): WorkshopRoute | null {
  const p = path.replace(/\/+$/, '') || '/';
  if (p === '/admin') return { page: 'signin' };
  if (p === '/admin/workshops') return { page: 'list' };
  let m = /^\/admin\/workshops\/([^/]+)$/.exec(p);
  if (m) return { page: 'dashboard', id: decodeURIComponent(m[1]) };
  m = /^\/w\/([^/]+)$/.exec(p);
  if (m) return { page: 'join', code: decodeURIComponent(m[1]) };
  return null;
}

/** The page for `path` if it is a workshop route. */
export async function workshopMount(path: string): Promise<Mount | null> {
  const r = workshopRoute(path);
  if (!r) return null;
  switch (r.page) {
    case 'signin':
      return (await import('../pages/admin')).mountSignIn;
    case 'list':
      return (await import('../pages/workshops')).mountWorkshops;
    case 'dashboard': {
      const { mountDashboard } = await import('../pages/dashboard');
      return (root) => mountDashboard(r.id, root);
    }
    case 'join': {
      const { mountJoin } = await import('../pages/join');
      return (root) => mountJoin(r.code, root);
    }
  }
}
