// One terminal's WebSocket connection: speaks the frame protocol (input, resize, batched
// acks out; output, size, replay end, exit in), reconnects by itself with backoff after a
// dropped connection, and asks the sink to reset before each scrollback replay so nothing
// shows twice. Knows nothing about xterm: the sink interface is all it writes to.

import { AckBatcher } from './ack';
import { decodeServerFrame, encodeAck, encodeInput, encodeResize } from './frames';

export type ConnectionState = 'connecting' | 'replaying' | 'open' | 'reconnecting' | 'exited' | 'closed';

export interface TerminalSink {
  /** Clears the terminal: called when a (re)connection opens, before the replay arrives. */
  reset(): void;
  /** Writes output bytes; calls `done` once they are processed (drives flow-control acks). */
  write(data: Uint8Array, done: () => void): void;
  /** The terminal's current size, sent as a resize frame on every open. */
  size(): { cols: number; rows: number };
  /** The shell exited with `status`; no automatic reconnection follows. */
  exited(status: number): void;
  /** Connection state changes, for status display. */
  state(state: ConnectionState, detail?: string): void;
}

/** The subset of the WebSocket API used here (so tests can pass a fake). */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export interface ConnectionOptions {
  /** Full ws:// or wss:// URL, computed afresh for every attempt. */
  url: () => string;
  sink: TerminalSink;
  createSocket?: (url: string) => SocketLike;
  /** Delay before reconnection attempt `n` (0-based). */
  backoff?: (attempt: number) => number;
  ackThreshold?: number;
  ackIdleMs?: number;
}

const OPEN = 1;

export function defaultBackoff(attempt: number): number {
  const base = Math.min(10_000, 500 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

export class TerminalConnection {
  private socket: SocketLike | null = null;
  private generation = 0;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private hasExited = false;
  private lastSize: { cols: number; rows: number } | null = null;
  private readonly acks: AckBatcher;
  private currentState: ConnectionState = 'closed';

  constructor(private readonly opts: ConnectionOptions) {
    this.acks = new AckBatcher((n) => this.sendFrame(encodeAck(n)), opts.ackThreshold, opts.ackIdleMs);
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  get exited(): boolean {
    return this.hasExited;
  }

  /** Opens the connection (again). */
  connect(): void {
    this.stopped = false;
    this.hasExited = false;
    this.clearRetry();
    this.dropSocket();
    const gen = ++this.generation;
    this.acks.reset();
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const create = this.opts.createSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
    let ws: SocketLike;
    try {
      ws = create(this.opts.url());
    } catch (e) {
      this.scheduleReconnect(String(e));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.socket = ws;
    ws.onopen = () => {
      if (gen !== this.generation) return;
      this.opts.sink.reset();
      this.setState('replaying');
      this.lastSize = null;
      const { cols, rows } = this.opts.sink.size();
      this.resize(cols, rows);
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation) return;
      this.onFrame(gen, ev.data);
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (ev) => {
      if (gen !== this.generation) return;
      this.socket = null;
      this.acks.reset();
      if (this.stopped || this.hasExited) return;
      this.scheduleReconnect(ev.reason || `closed (${ev.code})`);
    };
  }

  /** Sends keyboard or pasted input, split into frames of at most 64 KiB. */
  sendInput(data: string | Uint8Array): boolean {
    if (!this.isOpen()) return false;
    for (const frame of encodeInput(data)) this.socket!.send(frame);
    return true;
  }

  /** Tells the server the terminal size (skipped when unchanged on this connection). */
  resize(cols: number, rows: number): void {
    if (cols < 1 || rows < 1) return;
    if (this.lastSize && this.lastSize.cols === cols && this.lastSize.rows === rows) return;
    if (this.sendFrame(encodeResize(cols, rows))) this.lastSize = { cols, rows };
  }

  /** Ends the connection for good (page left, instance removed). */
  close(): void {
    this.stopped = true;
    this.clearRetry();
    this.generation++;
    this.dropSocket();
    this.acks.reset();
    this.setState('closed');
  }

  private onFrame(gen: number, data: unknown): void {
    if (!(data instanceof ArrayBuffer) && !(data instanceof Uint8Array)) return;
    let frame;
    try {
      frame = decodeServerFrame(data);
    } catch (e) {
      console.warn('drydock: ignoring malformed terminal frame:', e);
      return;
    }
    switch (frame.type) {
      case 'output': {
        const n = frame.data.length;
        this.opts.sink.write(frame.data, () => {
          if (gen === this.generation) this.acks.processed(n);
        });
        break;
      }
      case 'replay-end':
        this.attempt = 0;
        this.setState('open');
        break;
      case 'size':
        break;
      case 'exited':
        this.hasExited = true;
        this.acks.flush();
        this.setState('exited');
        this.opts.sink.exited(frame.status);
        break;
    }
  }

  private scheduleReconnect(detail: string): void {
    this.clearRetry();
    const delay = (this.opts.backoff ?? defaultBackoff)(this.attempt);
    this.attempt++;
    this.setState('reconnecting', detail);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private sendFrame(frame: Uint8Array): boolean {
    if (!this.isOpen()) return false;
    this.socket!.send(frame);
    return true;
  }

  private isOpen(): boolean {
    return this.socket !== null && this.socket.readyState === OPEN;
  }

  private dropSocket(): void {
    const ws = this.socket;
    this.socket = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(1000, 'client closed');
    } catch {
      /* already closed */
    }
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  }

  private setState(s: ConnectionState, detail?: string): void {
    this.currentState = s;
    this.opts.sink.state(s, detail);
  }
}
