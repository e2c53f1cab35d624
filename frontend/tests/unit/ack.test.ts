// Unit tests of flow-control ack batching.
import { describe, expect, it } from 'vitest';
import { AckBatcher, type AckTimers } from '../../src/terminal/ack';

function fakeTimers() {
  const pending = new Map<number, () => void>();
  let next = 1;
  const timers: AckTimers = {
    set: (fn) => {
      const id = next++;
      pending.set(id, fn);
      return id;
    },
    clear: (id) => void pending.delete(id as number),
  };
  const runAll = () => {
    const fns = [...pending.values()];
    pending.clear();
    fns.forEach((f) => f());
  };
  return { timers, runAll, count: () => pending.size };
}

describe('AckBatcher', () => {
  it('batches small writes until the idle timer fires', () => {
    const sent: number[] = [];
    const ft = fakeTimers();
    const b = new AckBatcher((n) => sent.push(n), 32768, 30, ft.timers);
    b.processed(100);
    b.processed(200);
    b.processed(300);
    expect(sent).toEqual([]);
    expect(ft.count()).toBe(1);
    ft.runAll();
    expect(sent).toEqual([600]);
    expect(b.unacked).toBe(0);
  });

  it('acks at once when the threshold is reached and cancels the idle timer', () => {
    const sent: number[] = [];
    const ft = fakeTimers();
    const b = new AckBatcher((n) => sent.push(n), 32768, 30, ft.timers);
    b.processed(20000);
    b.processed(20000);
    expect(sent).toEqual([40000]);
    expect(ft.count()).toBe(0);
    b.processed(5);
    ft.runAll();
    expect(sent).toEqual([40000, 5]);
  });

  it('acks every byte exactly once over many writes', () => {
    const sent: number[] = [];
    const ft = fakeTimers();
    const b = new AckBatcher((n) => sent.push(n), 32768, 30, ft.timers);
    let total = 0;
    for (let i = 0; i < 1000; i++) {
      const n = (i * 7919) % 4096;
      total += n;
      b.processed(n);
      if (i % 97 === 0) ft.runAll();
    }
    ft.runAll();
    expect(sent.reduce((a, n) => a + n, 0)).toBe(total);
    expect(sent.length).toBeLessThan(200);
  });

  it('ignores zero and forgets pending bytes on reset', () => {
    const sent: number[] = [];
    const ft = fakeTimers();
    const b = new AckBatcher((n) => sent.push(n), 32768, 30, ft.timers);
    b.processed(0);
    expect(ft.count()).toBe(0);
    b.processed(10);
    b.reset();
    ft.runAll();
    expect(sent).toEqual([]);
  });

  it('splits a flush larger than u32 into u32-sized acks', () => {
    const sent: number[] = [];
    const b = new AckBatcher((n) => sent.push(n), Number.MAX_SAFE_INTEGER, 30, fakeTimers().timers);
    b.processed(2 ** 32 + 5);
    b.flush();
    expect(sent).toEqual([0xffffffff, 6]);
  });
});
