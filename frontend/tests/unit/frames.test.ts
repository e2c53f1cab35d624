// Unit tests of the terminal frame encoding (must match protocol/src/frame.rs byte for byte).
import { describe, expect, it } from 'vitest';
import { decodeServerFrame, encodeAck, encodeInput, encodeResize, MAX_INPUT_CHUNK } from '../../src/terminal/frames';

describe('client frames', () => {
  it('encodes input as opcode 0x00 followed by UTF-8 bytes', () => {
    const [frame] = encodeInput('echo 你好\r');
    expect(frame[0]).toBe(0x00);
    expect(new TextDecoder().decode(frame.subarray(1))).toBe('echo 你好\r');
    expect(frame.length).toBe(1 + new TextEncoder().encode('echo 你好\r').length);
  });

  it('splits large input into frames of at most 64 KiB that reassemble exactly', () => {
    const text = 'x'.repeat(200_000) + 'é'.repeat(1000);
    const frames = encodeInput(text);
    expect(frames.length).toBe(4);
    for (const f of frames) {
      expect(f[0]).toBe(0x00);
      expect(f.length).toBeLessThanOrEqual(64 * 1024);
    }
    expect(frames[0].length).toBe(MAX_INPUT_CHUNK + 1);
    const joined = new Uint8Array(frames.reduce((n, f) => n + f.length - 1, 0));
    let off = 0;
    for (const f of frames) {
      joined.set(f.subarray(1), off);
      off += f.length - 1;
    }
    expect(new TextDecoder().decode(joined)).toBe(text);
  });

  it('encodes empty input as no frames', () => {
    expect(encodeInput('')).toEqual([]);
  });

  it('encodes resize as big-endian u16 cols and rows', () => {
    expect([...encodeResize(80, 24)]).toEqual([0x01, 0, 80, 0, 24]);
    expect([...encodeResize(300, 1000)]).toEqual([0x01, 0x01, 0x2c, 0x03, 0xe8]);
  });

  it('clamps resize to the protocol range 1..=1000', () => {
    expect([...encodeResize(0, 5000)]).toEqual([0x01, 0, 1, 0x03, 0xe8]);
  });

  it('encodes ack as a big-endian u32', () => {
    expect([...encodeAck(1 << 20)]).toEqual([0x02, 0, 0x10, 0, 0]);
    expect([...encodeAck(0xffffffff)]).toEqual([0x02, 0xff, 0xff, 0xff, 0xff]);
    expect(() => encodeAck(-1)).toThrow(RangeError);
    expect(() => encodeAck(2 ** 32)).toThrow(RangeError);
  });
});

describe('server frames', () => {
  it('decodes output, size, replay end and exit', () => {
    expect(decodeServerFrame(new Uint8Array([0x00, 104, 105]))).toEqual({ type: 'output', data: new Uint8Array([104, 105]) });
    expect(decodeServerFrame(new Uint8Array([0x01, 0, 132, 0, 43]))).toEqual({ type: 'size', cols: 132, rows: 43 });
    expect(decodeServerFrame(new Uint8Array([0x02]))).toEqual({ type: 'replay-end' });
    expect(decodeServerFrame(new Uint8Array([0x03, 0, 0, 0, 2]))).toEqual({ type: 'exited', status: 2 });
    expect(decodeServerFrame(new Uint8Array([0x03, 0xff, 0xff, 0xff, 0xff]))).toEqual({ type: 'exited', status: -1 });
  });

  it('decodes from an ArrayBuffer and from a view with an offset', () => {
    const buf = new Uint8Array([9, 9, 0x01, 0, 80, 0, 24]);
    expect(decodeServerFrame(buf.subarray(2))).toEqual({ type: 'size', cols: 80, rows: 24 });
    expect(decodeServerFrame(new Uint8Array([0x02]).buffer)).toEqual({ type: 'replay-end' });
  });

  it('rejects malformed frames with a reason', () => {
    expect(() => decodeServerFrame(new Uint8Array([]))).toThrow(/empty frame/);
    expect(() => decodeServerFrame(new Uint8Array([0x07]))).toThrow(/unknown opcode 0x07/);
    expect(() => decodeServerFrame(new Uint8Array([0x01, 0, 80]))).toThrow('frame with opcode 0x01 has a 2-byte payload, expected 4');
    expect(() => decodeServerFrame(new Uint8Array([0x02, 1]))).toThrow(/expected 0/);
  });
});
