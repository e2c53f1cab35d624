// Typed calls of the workshop endpoints (backend/src/workshops/http.rs): instructor sign-in,
// workshops, the dashboard and its actions, and the public join endpoints. Instructor calls
// ride on the HttpOnly drydock_admin cookie the sign-in sets; nothing here stores a secret.

import { request, type Instance, type Session, type StepProgress } from '../api';

export interface Workshop {
  id: string;
  code: string;
  join_url: string;
  title: string;
  lesson: string;
  lesson_title: string;
  template: string;
  lang: string | null;
  seats: number;
  taken: number;
  duration_minutes: number;
  warm_pool: number;
  opens_at: string | null;
  closes_at: string | null;
  created_at: string;
  ended_at: string | null;
  /** scheduled | open | closed | ended */
  status: string;
}

export interface StepInfo {
  id: string;
  title: string;
  has_check: boolean;
}

export interface Participant {
  name: string;
  session: string;
  joined_at: string;
  active: boolean;
  state: string;
  expires_at: string;
  seconds_left: number;
  instances: Instance[];
  progress: StepProgress[];
  passed: number;
}

export interface Dashboard extends Workshop {
  steps: StepInfo[];
  warm: { ready: number; starting: number };
  participants: Participant[];
}

export interface JoinInfo {
  code: string;
  title: string;
  lesson: string;
  lesson_title: string;
  seats: number;
  taken: number;
  duration_minutes: number;
  opens_at: string | null;
  closes_at: string | null;
  status: string;
  refusal: string | null;
  session: string | null;
}

export interface Joined extends Session {
  rejoined: boolean;
  workshop: string;
  name: string;
}

export interface NewWorkshop {
  title: string;
  lesson: string;
  seats: number;
  duration_minutes: number;
  warm_pool?: number;
  opens_at?: string;
  closes_at?: string;
  lang?: string;
}

const enc = encodeURIComponent;
const ws = (id: string) => `/api/v1/workshops/${enc(id)}`;

export const workshopsApi = {
  login: (token: string) => request<{ owner: string; expires_at: string }>('POST', '/api/v1/admin/login', { body: { token } }),
  logout: () => request<void>('POST', '/api/v1/admin/logout'),
  me: () => request<{ owner: string; via: string }>('GET', '/api/v1/admin/me'),
  list: () => request<Workshop[]>('GET', '/api/v1/workshops'),
  create: (body: NewWorkshop) => request<Workshop>('POST', '/api/v1/workshops', { body }),
  dashboard: (id: string) => request<Dashboard>('GET', ws(id)),
  extendAll: (id: string, minutes = 15) => request<{ extended: number }>('POST', `${ws(id)}/extend`, { body: { minutes } }),
  endAll: (id: string) => request<{ ended: number }>('POST', `${ws(id)}/end`),
  extendOne: (id: string, session: string, minutes = 15) =>
    request<Participant>('POST', `${ws(id)}/participants/${enc(session)}/extend`, { body: { minutes } }),
  endOne: (id: string, session: string) => request<void>('POST', `${ws(id)}/participants/${enc(session)}/end`),
  joinInfo: (code: string) => request<JoinInfo>('GET', `${ws(code)}/join`),
  join: (code: string, name: string, lang?: string) => request<Joined>('POST', `${ws(code)}/join`, { body: { name, lang } }),
};

export function resultsUrl(id: string): string {
  return `${ws(id)}/results.csv`;
}

export function eventsUrl(id: string): string {
  return `${ws(id)}/events`;
}

/** The read-only terminal WebSocket of a participant's instance (the admin cookie authorises it). */
export function viewTerminalUrl(session: string, instance: string, term = 'main'): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/api/v1/sessions/${enc(session)}/instances/${enc(instance)}/terminals/${enc(term)}?mode=view`;
}
