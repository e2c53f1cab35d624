// The HTTP client for the server's External API (design brief): typed calls, `ApiError`
// carrying status and the server's {"error"} message, and the session token kept in
// sessionStorage as a fallback for the session cookie (Bearer header, ?token= on WebSockets).

export type InstanceState = 'starting' | 'ready' | 'failed';
export interface Instance {
  name: string;
  state: InstanceState;
  error?: string;
}
export interface StepProgress {
  step: number;
  passed: boolean;
  checked_at?: string;
}
export interface Session {
  id: string;
  progress?: StepProgress[];
  token?: string;
  expires_at: string;
  template: string;
  lesson?: string | null;
  instances: Instance[];
}
export interface LessonSummary {
  id: string;
  title: string;
  template: string;
  minutes?: number;
  summary?: string;
  steps?: number | unknown[];
}
export interface LessonStep {
  title?: string;
  html: string;
  /** false (under either name) when the step has no check script. */
  check?: boolean | unknown;
  has_check?: boolean;
}

/** Whether a step offers a Check (assumed so unless the server says otherwise). */
export function stepHasCheck(step: LessonStep | undefined): boolean {
  return !!step && step.has_check !== false && step.check !== false && step.check !== null;
}
export interface Lesson extends LessonSummary {
  steps: LessonStep[];
}
export interface CheckResult {
  passed: boolean;
  message: string;
}
export interface Port {
  port: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const TOKEN_PREFIX = 'drydock.token.';

export function rememberToken(id: string, token: string | undefined): void {
  if (!token) return;
  try {
    sessionStorage.setItem(TOKEN_PREFIX + id, token);
  } catch {
    /* storage unavailable: the cookie still carries auth */
  }
}

export function tokenFor(id: string): string | null {
  try {
    return sessionStorage.getItem(TOKEN_PREFIX + id);
  } catch {
    return null;
  }
}

export function forgetToken(id: string): void {
  try {
    sessionStorage.removeItem(TOKEN_PREFIX + id);
  } catch {
    /* nothing to forget */
  }
}

const enc = encodeURIComponent;

export async function request<T>(method: string, path: string, opts: { body?: unknown; session?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const token = opts.session ? tokenFor(opts.session) : null;
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch (e) {
    throw new ApiError(0, `${method} ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) {
    const msg =
      data && typeof data === 'object' && 'error' in data && typeof (data as { error: unknown }).error === 'string'
        ? (data as { error: string }).error
        : `${res.status} ${res.statusText || 'error'}`.trim();
    throw new ApiError(res.status, msg);
  }
  return data as T;
}

export const api = {
  lessons: (lang: string) => request<LessonSummary[]>('GET', `/api/v1/lessons?lang=${enc(lang)}`),
  lesson: (id: string, lang: string) => request<Lesson>('GET', `/api/v1/lessons/${enc(id)}?lang=${enc(lang)}`),
  templates: () => request<unknown>('GET', '/api/v1/templates'),

  async createSession(body: { template: string; lesson?: string; lang?: string }): Promise<Session> {
    const s = await request<Session>('POST', '/api/v1/sessions', { body });
    rememberToken(s.id, s.token);
    return s;
  },
  session: (id: string) => request<Session>('GET', `/api/v1/sessions/${enc(id)}`, { session: id }),
  async closeSession(id: string): Promise<void> {
    await request<void>('DELETE', `/api/v1/sessions/${enc(id)}`, { session: id });
    forgetToken(id);
  },
  extend: (id: string) => request<Partial<Session> | undefined>('POST', `/api/v1/sessions/${enc(id)}/extend`, { session: id }),
  addInstance: (id: string) =>
    request<Instance | Session | undefined>('POST', `/api/v1/sessions/${enc(id)}/instances`, { session: id }),
  removeInstance: (id: string, name: string) =>
    request<void>('DELETE', `/api/v1/sessions/${enc(id)}/instances/${enc(name)}`, { session: id }),
  ports: (id: string, name: string) =>
    request<Port[]>('GET', `/api/v1/sessions/${enc(id)}/instances/${enc(name)}/ports`, { session: id }),
  check: (id: string, step: number) =>
    request<CheckResult>('POST', `/api/v1/sessions/${enc(id)}/lesson/steps/${step}/check`, { session: id }),
};

/** WebSocket URL of a terminal, with ?token= when a token is known. */
export function terminalUrl(id: string, instance: string, term = 'main'): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = tokenFor(id);
  const q = token ? `?token=${enc(token)}` : '';
  return `${proto}//${location.host}/api/v1/sessions/${enc(id)}/instances/${enc(instance)}/terminals/${enc(term)}${q}`;
}

/** Link to an instance's port through the server's preview proxy. */
export function portUrl(id: string, instance: string, port: number): string {
  return `/p/${enc(id)}/${enc(instance)}/${port}/`;
}

export interface TemplateInfo {
  id: string;
  available: boolean;
  reason?: string;
}

/** The templates of a /templates answer (`[{"id","available","reason"}]`, or plain names). */
export function templateInfo(answer: unknown): TemplateInfo[] {
  const list = Array.isArray(answer)
    ? answer
    : answer && typeof answer === 'object' && Array.isArray((answer as { templates?: unknown }).templates)
      ? (answer as { templates: unknown[] }).templates
      : [];
  const out: TemplateInfo[] = [];
  for (const item of list) {
    if (typeof item === 'string') out.push({ id: item, available: true });
    else if (item && typeof item === 'object') {
      const o = item as Record<string, unknown>;
      const id = o.id ?? o.name ?? o.template;
      if (typeof id !== 'string') continue;
      const available = o.available !== false && o.enabled !== false;
      out.push({ id, available, reason: typeof o.reason === 'string' ? o.reason : undefined });
    }
  }
  return out;
}

/** Names of the templates the server offers now. */
export function templateNames(answer: unknown): string[] {
  return templateInfo(answer)
    .filter((t) => t.available)
    .map((t) => t.id);
}

/** A human-readable message for any thrown value. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
