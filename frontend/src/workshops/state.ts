// The dashboard's state and how the live feed changes it (pure, unit-tested): a `snapshot`
// replaces everything, participant events (join, check, extend, end, participant) upsert one
// participant, and a `workshop` event (extend/end all) asks for a fresh snapshot.

import type { Dashboard, Participant } from './api';

export type FeedEvent =
  | { type: 'snapshot'; data: Dashboard }
  | { type: 'join' | 'check' | 'extend' | 'end' | 'participant'; data: { participant: Participant } }
  | { type: 'workshop'; data: { action: string } };

export interface Applied {
  dashboard: Dashboard | null;
  /** The whole dashboard should be fetched again. */
  refetch: boolean;
  /** The participant that changed (for a highlight and the live region). */
  changed?: Participant;
}

export function applyEvent(d: Dashboard | null, ev: FeedEvent): Applied {
  switch (ev.type) {
    case 'snapshot':
      return { dashboard: ev.data, refetch: false };
    case 'workshop':
      return { dashboard: d, refetch: true };
    default: {
      const p = ev.data?.participant;
      if (!d || !p) return { dashboard: d, refetch: !d };
      const participants = d.participants.slice();
      const i = participants.findIndex((x) => x.session === p.session);
      if (i >= 0) participants[i] = p;
      else participants.push(p);
      const taken = participants.filter((x) => x.active).length;
      return { dashboard: { ...d, participants, taken }, refetch: false, changed: p };
    }
  }
}

/** A step's state for participant `p`: passed, tried (checked, not passed) or not tried. */
export function stepState(p: Participant, step: number): 'passed' | 'tried' | 'none' {
  const s = p.progress.find((x) => x.step === step);
  return !s ? 'none' : s.passed ? 'passed' : 'tried';
}

/** A `datetime-local` value (local time) as RFC 3339 with the browser's offset; '' stays ''. */
export function localToRfc3339(value: string): string {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return '';
  return d.toISOString();
}
