// Terminal frame encoding and decoding (the wire format of protocol/src/frame.rs):
// one WebSocket binary message is one frame, its first byte the opcode.
// Pure functions only, so they are unit-tested in node.

export const CLIENT_OP = { INPUT: 0x00, RESIZE: 0x01, ACK: 0x02 } as const;
export const SERVER_OP = { OUTPUT: 0x00, SIZE: 0x01, REPLAY_END: 0x02, EXITED: 0x03 } as const;

/** Largest input payload per frame: a frame (opcode included) never exceeds 64 KiB. */
export const MAX_INPUT_CHUNK = 64 * 1024 - 1;

export type ServerFrame =
  | { type: 'output'; data: Uint8Array }
  | { type: 'size'; cols: number; rows: number }
  | { type: 'replay-end' }
  | { type: 'exited'; status: number };

const utf8 = new TextEncoder();

/** Encodes input (text is UTF-8 encoded) into one or more frames of at most 64 KiB each. */
export function encodeInput(input: string | Uint8Array, maxChunk = MAX_INPUT_CHUNK): Uint8Array[] {
  const bytes = typeof input === 'string' ? utf8.encode(input) : input;
  const frames: Uint8Array[] = [];
  for (let off = 0; off < bytes.length; off += maxChunk) {
    const part = bytes.subarray(off, Math.min(off + maxChunk, bytes.length));
    const frame = new Uint8Array(1 + part.length);
    frame[0] = CLIENT_OP.INPUT;
    frame.set(part, 1);
    frames.push(frame);
  }
  return frames;
}

/** Encodes a resize frame; cols and rows are clamped to the protocol's 1..=1000 range. */
export function encodeResize(cols: number, rows: number): Uint8Array {
  const clamp = (n: number) => Math.max(1, Math.min(1000, Math.floor(n) || 1));
  const frame = new Uint8Array(5);
  const view = new DataView(frame.buffer);
  frame[0] = CLIENT_OP.RESIZE;
  view.setUint16(1, clamp(cols), false);
  view.setUint16(3, clamp(rows), false);
  return frame;
}

/** Encodes a flow-control ack of `count` processed output bytes (u32, big-endian). */
export function encodeAck(count: number): Uint8Array {
  if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) {
    throw new RangeError(`ack count ${count} is not a u32`);
  }
  const frame = new Uint8Array(5);
  frame[0] = CLIENT_OP.ACK;
  new DataView(frame.buffer).setUint32(1, count, false);
  return frame;
}

/** Decodes a frame from the server; throws an Error naming the problem when malformed. */
export function decodeServerFrame(msg: ArrayBuffer | Uint8Array): ServerFrame {
  const bytes = msg instanceof Uint8Array ? msg : new Uint8Array(msg);
  if (bytes.length === 0) throw new Error('empty frame: a frame needs at least an opcode byte');
  const op = bytes[0];
  const payload = bytes.subarray(1);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const expect = (n: number) => {
    if (payload.length !== n) {
      throw new Error(
        `frame with opcode 0x${hex(op)} has a ${payload.length}-byte payload, expected ${n}`,
      );
    }
  };
  switch (op) {
    case SERVER_OP.OUTPUT:
      return { type: 'output', data: payload };
    case SERVER_OP.SIZE:
      expect(4);
      return { type: 'size', cols: view.getUint16(0, false), rows: view.getUint16(2, false) };
    case SERVER_OP.REPLAY_END:
      expect(0);
      return { type: 'replay-end' };
    case SERVER_OP.EXITED:
      expect(4);
      return { type: 'exited', status: view.getInt32(0, false) };
    default:
      throw new Error(`unknown opcode 0x${hex(op)}`);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}
