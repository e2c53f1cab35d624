// Unit tests of the API helpers that need no browser.
import { describe, expect, it } from 'vitest';
import { templateNames } from '../../src/api';

describe('templateNames', () => {
  it('reads the plausible shapes of a /templates answer', () => {
    expect(templateNames(['docker', 'kubernetes'])).toEqual(['docker', 'kubernetes']);
    expect(templateNames([{ id: 'docker' }, { name: 'kubernetes' }])).toEqual(['docker', 'kubernetes']);
    expect(templateNames({ templates: [{ template: 'kubernetes' }] })).toEqual(['kubernetes']);
  });

  it('skips templates marked unavailable and ignores junk', () => {
    expect(templateNames([{ id: 'kubernetes', available: false }, { id: 'docker' }])).toEqual(['docker']);
    expect(templateNames(null)).toEqual([]);
    expect(templateNames({ error: 'not found' })).toEqual([]);
    expect(templateNames([1, null, {}])).toEqual([]);
  });
});
