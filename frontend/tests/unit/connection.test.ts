// Unit tests of the terminal connection against a fake WebSocket: resize on open, reset
// before replay, input chunking, batched acks, reconnection with backoff, exit handling.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TerminalConnection, type ConnectionState, type SocketLike } from '../../src/terminal/connection';

class FakeSocket implements SocketLike {
  binaryType = 'blob';
  readyState = 0;
  sent: Uint8Array[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: Uint8Array) {
    this.sent.push(new Uint8Array(data));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(bytes: number[] | Uint8Array) {
    this.onmessage?.({ data: new Uint8Array(bytes).buffer });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

function setup() {
  const sockets: FakeSocket[] = [];
  const log: string[] = [];
  const states: ConnectionState[] = [];
  const writes: Array<() => void> = [];
  let exitStatus: number | null = null;
  const conn = new TerminalConnection({
    url: () => `ws://test/term?n=${sockets.length}`,
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    backoff: (n) => 100 * (n + 1),
    ackThreshold: 1000,
    ackIdleMs: 10,
    sink: {
      reset: () => log.push('reset'),
      write: (data, done) => {
        log.push(`write:${new TextDecoder().decode(data)}`);
        writes.push(done);
      },
      size: () => ({ cols: 100, rows: 30 }),
      exited: (status) => (exitStatus = status),
      state: (s) => states.push(s),
    },
  });
  return { conn, sockets, log, states, writes, exit: () => exitStatus };
}

describe('TerminalConnection', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sets arraybuffer, resets the sink and sends the size on open', () => {
    const { conn, sockets, log, states } = setup();
    conn.connect();
    const ws = sockets[0];
    expect(ws.binaryType).toBe('arraybuffer');
    ws.open();
    expect(log).toEqual(['reset']);
    expect(ws.sent.map((f) => [...f])).toEqual([[0x01, 0, 100, 0, 30]]);
    ws.receive([0x02]);
    expect(states).toEqual(['connecting', 'replaying', 'open']);
  });

  it('sends input chunked and resize only when it changes', () => {
    const { conn, sockets } = setup();
    conn.connect();
    sockets[0].open();
    sockets[0].sent = [];
    expect(conn.sendInput('a'.repeat(70_000))).toBe(true);
    expect(sockets[0].sent.length).toBe(2);
    expect(sockets[0].sent.every((f) => f[0] === 0 && f.length <= 65536)).toBe(true);
    conn.resize(100, 30);
    expect(sockets[0].sent.length).toBe(2);
    conn.resize(120, 40);
    expect([...sockets[0].sent[2]]).toEqual([0x01, 0, 120, 0, 40]);
  });

  it('drops input while not connected', () => {
    const { conn } = setup();
    conn.connect();
    expect(conn.sendInput('ls\r')).toBe(false);
  });

  it('acks output bytes once xterm has processed them, in batches', () => {
    const { conn, sockets, writes } = setup();
    conn.connect();
    const ws = sockets[0];
    ws.open();
    ws.sent = [];
    ws.receive([0x00, ...new TextEncoder().encode('hello')]);
    ws.receive([0x00, 1, 2, 3]);
    expect(ws.sent).toEqual([]);
    writes.forEach((done) => done());
    expect(ws.sent).toEqual([]);
    vi.advanceTimersByTime(10);
    expect(ws.sent.map((f) => [...f])).toEqual([[0x02, 0, 0, 0, 8]]);
    ws.receive([0x00, ...new Uint8Array(1500)]);
    writes[2]();
    expect([...ws.sent[1]]).toEqual([0x02, 0, 0, 0x05, 0xdc]);
  });

  it('reconnects with backoff after a drop, resets before the replay and ignores stale acks', () => {
    const { conn, sockets, log, states, writes } = setup();
    conn.connect();
    sockets[0].open();
    sockets[0].receive([0x00, 65]);
    sockets[0].drop();
    expect(states.at(-1)).toBe('reconnecting');
    vi.advanceTimersByTime(99);
    expect(sockets.length).toBe(1);
    vi.advanceTimersByTime(1);
    expect(sockets.length).toBe(2);
    sockets[1].drop();
    vi.advanceTimersByTime(199);
    expect(sockets.length).toBe(2);
    vi.advanceTimersByTime(1);
    expect(sockets.length).toBe(3);
    const ws = sockets[2];
    ws.open();
    expect(log).toEqual(['reset', 'write:A', 'reset']);
    ws.sent = [];
    writes[0]();
    vi.advanceTimersByTime(50);
    expect(ws.sent).toEqual([]);
    ws.receive([0x02]);
    ws.drop();
    vi.advanceTimersByTime(100);
    expect(sockets.length).toBe(4);
  });

  it('stops reconnecting after the shell exits and reconnects on demand', () => {
    const { conn, sockets, exit, states } = setup();
    conn.connect();
    sockets[0].open();
    sockets[0].receive([0x03, 0, 0, 0, 130]);
    expect(exit()).toBe(130);
    expect(conn.exited).toBe(true);
    sockets[0].drop(1000);
    vi.advanceTimersByTime(60_000);
    expect(sockets.length).toBe(1);
    expect(states.at(-1)).toBe('exited');
    conn.connect();
    expect(sockets.length).toBe(2);
    expect(conn.exited).toBe(false);
  });

  it('closes for good', () => {
    const { conn, sockets } = setup();
    conn.connect();
    sockets[0].open();
    conn.close();
    sockets[0].onclose?.({ code: 1000, reason: '' });
    vi.advanceTimersByTime(60_000);
    expect(sockets.length).toBe(1);
    expect(conn.state).toBe('closed');
  });

  it('ignores malformed frames', () => {
    const { conn, sockets, log } = setup();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    conn.connect();
    sockets[0].open();
    sockets[0].receive([0x09]);
    expect(log).toEqual(['reset']);
    expect(warn).toHaveBeenCalled();
  });
});
