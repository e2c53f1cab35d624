// Unit tests of the API helpers that need no browser.
import { describe, expect, it } from 'vitest';
import { stepHasCheck, templateInfo, templateNames } from '../../src/api';

describe('templateNames', () => {
  it('reads the plausible shapes of a /templates answer', () => {
    expect(templateNames(['docker', 'kubernetes'])).toEqual(['docker', 'kubernetes']);
    expect(templateNames([{ id: 'docker' }, { name: 'kubernetes' }])).toEqual(['docker', 'kubernetes']);
    expect(templateNames({ templates: [{ template: 'kubernetes' }] })).toEqual(['kubernetes']);
  });

  it('reads the server shape with availability and reason', () => {
    const answer = [
      { id: 'docker', available: true, reason: null },
      { id: 'kubernetes', available: false, reason: 'image drydock/instance-k3s:latest is missing' },
    ];
    expect(templateNames(answer)).toEqual(['docker']);
    expect(templateInfo(answer)[1]).toEqual({ id: 'kubernetes', available: false, reason: 'image drydock/instance-k3s:latest is missing' });
  });

  it('skips templates marked unavailable and ignores junk', () => {
    expect(templateNames([{ id: 'kubernetes', available: false }, { id: 'docker' }])).toEqual(['docker']);
    expect(templateNames(null)).toEqual([]);
    expect(templateNames({ error: 'not found' })).toEqual([]);
    expect(templateNames([1, null, {}])).toEqual([]);
  });
});

describe('stepHasCheck', () => {
  it('assumes a check unless the step says it has none', () => {
    expect(stepHasCheck({ html: '' })).toBe(true);
    expect(stepHasCheck({ html: '', check: true })).toBe(true);
    expect(stepHasCheck({ html: '', check: { file: 'check.sh' } })).toBe(true);
    expect(stepHasCheck({ html: '', check: false })).toBe(false);
    expect(stepHasCheck({ html: '', check: null })).toBe(false);
    expect(stepHasCheck({ html: '', has_check: false })).toBe(false);
    expect(stepHasCheck(undefined)).toBe(false);
  });
});
