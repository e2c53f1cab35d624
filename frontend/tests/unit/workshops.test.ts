// Unit tests of the workshop pages' pure parts: routes, the live feed reducer, step states.
import { describe, expect, it } from 'vitest';
import type { Dashboard, Participant } from '../../src/workshops/api';
import { workshopRoute } from '../../src/workshops/routes';
import { applyEvent, localToRfc3339, stepState } from '../../src/workshops/state';

function participant(name: string, session: string, over: Partial<Participant> = {}): Participant {
  return {
    name,
    session,
    joined_at: '2026-05-04T01:00:00.000Z',
    active: true,
    state: 'active',
    expires_at: '2026-05-04T02:00:00.000Z',
    seconds_left: 3600,
    instances: [{ name: 'node1', state: 'ready' }],
    progress: [],
    passed: 0,
    ...over,
  };
}

function dashboard(participants: Participant[]): Dashboard {
  return {
    id: 'w1',
    code: 'ABC234',
    join_url: 'http://x/w/ABC234',
    title: 'T',
    lesson: 'whalesay',
    lesson_title: 'Whalesay',
    template: 'docker',
    lang: null,
    seats: 3,
    taken: participants.length,
    duration_minutes: 60,
    warm_pool: 0,
    opens_at: null,
    closes_at: null,
    created_at: '2026-05-04T00:00:00.000Z',
    ended_at: null,
    status: 'open',
    steps: [{ id: 'pull', title: 'Pull', has_check: true }],
    warm: { ready: 0, starting: 0 },
    participants,
  };
}

describe('workshopRoute', () => {
  it('maps the instructor and join paths', () => {
    expect(workshopRoute('/admin')).toEqual({ page: 'signin' });
    expect(workshopRoute('/admin/')).toEqual({ page: 'signin' });
    expect(workshopRoute('/admin/workshops')).toEqual({ page: 'list' });
    expect(workshopRoute('/admin/workshops/0123abcd')).toEqual({ page: 'dashboard', id: '0123abcd' });
    expect(workshopRoute('/w/ABC234')).toEqual({ page: 'join', code: 'ABC234' });
    expect(workshopRoute('/')).toBeNull();
    expect(workshopRoute('/s/0123456789abcdef')).toBeNull();
    expect(workshopRoute('/w/a/b')).toBeNull();
  });
});

describe('applyEvent', () => {
  it('replaces everything on a snapshot', () => {
    const d = dashboard([participant('Ada', 's1')]);
    expect(applyEvent(null, { type: 'snapshot', data: d })).toEqual({ dashboard: d, refetch: false });
  });

  it('adds a participant on join and updates one on check', () => {
    const d = dashboard([participant('Ada', 's1')]);
    const joined = applyEvent(d, { type: 'join', data: { participant: participant('Bob', 's2') } });
    expect(joined.dashboard!.participants.map((p) => p.name)).toEqual(['Ada', 'Bob']);
    expect(joined.dashboard!.taken).toBe(2);
    const passed = participant('Ada', 's1', { progress: [{ step: 0, passed: true, checked_at: '2026-05-04T01:05:00.000Z' }], passed: 1 });
    const checked = applyEvent(joined.dashboard, { type: 'check', data: { participant: passed } });
    expect(checked.dashboard!.participants[0].passed).toBe(1);
    expect(checked.changed).toBe(passed);
    const ended = applyEvent(checked.dashboard, { type: 'end', data: { participant: participant('Bob', 's2', { active: false }) } });
    expect(ended.dashboard!.taken).toBe(1);
  });

  it('asks for a fresh snapshot on workshop-wide changes or without state', () => {
    const d = dashboard([]);
    expect(applyEvent(d, { type: 'workshop', data: { action: 'end' } }).refetch).toBe(true);
    expect(applyEvent(null, { type: 'join', data: { participant: participant('Ada', 's1') } }).refetch).toBe(true);
  });
});

describe('stepState and times', () => {
  it('tells passed, tried and untried steps apart', () => {
    const p = participant('Ada', 's1', {
      progress: [
        { step: 0, passed: true, checked_at: 'x' },
        { step: 1, passed: false, checked_at: 'y' },
      ],
    });
    expect([0, 1, 2].map((i) => stepState(p, i))).toEqual(['passed', 'tried', 'none']);
  });

  it('turns a datetime-local value into RFC 3339', () => {
    expect(localToRfc3339('')).toBe('');
    expect(localToRfc3339('nonsense')).toBe('');
    expect(localToRfc3339('2026-05-04T09:30')).toMatch(/^2026-05-0[34]T\d\d:30:00\.000Z$/);
  });
});
