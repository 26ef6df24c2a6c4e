/**
 * The end of a TCP connection: segments that add nothing new (pure ACKs such as the last ACK of
 * a close, retransmitted FINs or data) after the output they follow has left the engine, and
 * connections that stay idle. None of them may cost a checkpoint: they carry no output the
 * client could see differ. Expectations come from the construction: both sides send the same
 * stream; the only divergence a scenario has is the one it builds (a silent secondary).
 */
import { describe, expect, it } from 'vitest';
import { Harness } from './harness.js';
import { streamBytes } from './frames.js';
import { CLIENT as C, GUEST as G, Sender, senderPair } from './sender.js';


/** Run the engine's timers from `from` to `to` in 100 ms steps (as `colo-proxy compare` does). */
function ticks(h: Harness, from: number, to: number): void {
  for (let t = from; t <= to; t += 100) h.engine.tick(t);
}

function causes(h: Harness): string[] {
  return h.records.map((r) => `${r.cause}@${r.offset}`);
}

describe('the last ACK of a close', () => {
  for (const shadow of [false, true]) {
    for (const sAck of ['before', 'after', 'never'] as const) {
      it(`both FINs matched: the primary's last ACK goes at once (secondary's ACK ${sAck}, ${shadow ? 'shadow' : 'real'} mode)`, () => {
        const h = new Harness({ shadow });
        const { P, S } = senderPair(500, 12, [10, 11], [20, 11]);
        h.open(P, S, 0);
        h.p(P.data(0, 500), 1);
        h.s(S.data(0, 500), 1);
        h.p(P.fin(500), 2);
        h.s(S.fin(500), 2);
        if (sAck === 'before') h.s(S.ack(501), 3);
        const last = h.p(P.ack(501), 4);
        expect(h.isReleased(last)).toBe(true);
        if (sAck === 'after') h.s(S.ack(501), 5);
        ticks(h, 100, 10_000);
        expect(causes(h)).toEqual([]);
        h.finish();
      });
    }
  }

  it('shadow mode, silent secondary: after the timeout checkpoint released data and FIN, the last ACK and retransmissions go at once (one checkpoint, not two)', () => {
    const h = new Harness({ shadow: true });
    const { P, S } = senderPair(500, 12, [10, 11], [20, 11]);
    h.open(P, S, 0);
    h.p(P.data(0, 500), 1);
    h.p(P.fin(500), 1);
    h.s(S.data(0, 200), 1); // then silent: no more data, no FIN, no ACK
    ticks(h, 100, 4400);
    expect(causes(h)).toEqual(['timeout@200']);
    expect(h.engine.held.frames).toBe(0);
    const last = h.p(P.ack(501), 4500);
    const reFin = h.p(P.fin(500), 4600);
    const reData = h.p(P.data(300, 200), 4700);
    expect([last, reFin, reData].map((i) => h.isReleased(i))).toEqual([true, true, true]);
    ticks(h, 4800, 15_000);
    expect(causes(h)).toEqual(['timeout@200']);
    expect(h.engine.statsSnapshot().primary.releasedBy.control).toBeGreaterThanOrEqual(3);
    h.finish();
  });

  it('real mode, silent secondary: the timeout checkpoint restarts the direction after the FIN; the last ACK and retransmissions go at once', () => {
    const h = new Harness({ shadow: false, autoComplete: true });
    const { P, S } = senderPair(500, 12, [10, 11], [20, 11]);
    h.open(P, S, 0);
    h.p(P.data(0, 500), 1);
    h.p(P.fin(500), 1);
    h.s(S.data(0, 200), 1);
    ticks(h, 100, 4400);
    expect(causes(h)).toEqual(['timeout@200']);
    const later = [h.p(P.ack(501), 4500), h.p(P.fin(500), 4600), h.p(P.data(300, 200), 4700)];
    expect(later.map((i) => h.isReleased(i))).toEqual([true, true, true]);
    ticks(h, 4800, 15_000);
    expect(causes(h)).toEqual(['timeout@200']);
    h.finish();
  });

  it('shadow mode, late secondary: a window-update ACK after the timeout goes at once; the late bytes still match and the next response compares as usual', () => {
    const h = new Harness({ shadow: true });
    const r1 = streamBytes(700, 31);
    const r2 = streamBytes(900, 32);
    const all = Uint8Array.from([...r1, ...r2]);
    const P = new Sender(G, C, 10, 11, all);
    const S = new Sender(G, C, 20, 11, all);
    h.p(P.syn(), 0);
    h.s(S.syn(), 0);
    h.p(P.data(0, 700), 1);
    ticks(h, 100, 4400);
    expect(causes(h)).toEqual(['timeout@0']);
    const upd = h.p(P.ack(700), 4500);
    expect(h.isReleased(upd)).toBe(true);
    h.s(S.data(0, 400), 5000);
    h.s(S.data(400, 300), 5000);
    // The second response: held until the secondary's equal bytes came, then released matched.
    const d2 = h.p(P.data(700, 900), 6000);
    expect(h.isReleased(d2)).toBe(false);
    h.s(S.data(700, 900), 6001);
    expect(h.isReleased(d2)).toBe(true);
    ticks(h, 6100, 15_000);
    expect(causes(h)).toEqual(['timeout@0']);
    h.finish();
  });

  it('shadow mode: a retransmission filling a hole of the primary (bytes the client never got) is still compared after the flush', () => {
    const h = new Harness({ shadow: true });
    const { P, S } = senderPair(500, 14, [10, 11], [20, 11]);
    h.open(P, S, 0);
    h.p(P.data(0, 200), 1);
    h.p(P.data(300, 200, {}, true), 1); // [200, 300) lost on the way
    h.s(S.data(0, 200), 1);
    ticks(h, 100, 4400);
    expect(causes(h)).toEqual(['timeout@300']);
    const fill = h.p(P.data(200, 100), 4500);
    expect(h.isReleased(fill)).toBe(false);
    h.s(S.data(200, 300, {}, true), 4600);
    expect(h.isReleased(fill)).toBe(true);
    const last = h.p(P.ack(501), 4700);
    expect(h.isReleased(last)).toBe(true);
    ticks(h, 4800, 15_000);
    expect(causes(h)).toEqual(['timeout@300']);
    h.finish();
  });

  it('data the checkpoint did not release is still compared: a changed byte after the timeout is a divergence', () => {
    const h = new Harness({ shadow: true });
    const { P, S } = senderPair(1000, 41, [10, 11], [20, 11], (b) => (b[800] ^= 0xff));
    h.open(P, S, 0);
    h.p(P.data(0, 500), 1);
    ticks(h, 100, 4400);
    h.s(S.data(0, 500), 4500);
    const d = h.p(P.data(500, 500), 4600);
    h.s(S.data(500, 500), 4601);
    expect(h.isReleased(d)).toBe(true);
    expect(causes(h)).toEqual(['timeout@0', 'payload@800']);
    h.finish();
  });

  it('a SYN on the same 4-tuple after the close starts a new connection, compared from its own start', () => {
    const h = new Harness({ shadow: true });
    const { P: P1, S: S1 } = senderPair(300, 51, [10, 11], [20, 11]);
    h.open(P1, S1, 0);
    h.p(P1.data(0, 300, {}, true), 1);
    h.s(S1.data(0, 300, {}, true), 1);
    h.p(P1.ack(301), 2);
    const { P: P2, S: S2 } = senderPair(400, 52, [5000, 5001], [9000, 5001], (b) => (b[10] ^= 1));
    h.open(P2, S2, 100);
    h.p(P2.data(0, 400, {}, true), 101);
    h.s(S2.data(0, 400, {}, true), 101);
    ticks(h, 200, 10_000);
    expect(causes(h)).toEqual(['payload@10']);
    h.finish();
  });
});

describe('idle connections', () => {
  for (const active of [false, true]) {
    it(`${active ? 'guest-initiated (each side in its own sequence space)' : 'passively opened'} connection idle for 60 s, then more output and the close: no checkpoint`, () => {
      const h = new Harness({ shadow: true });
      const { P, S } = senderPair(1200, 61, [10, 11], [7000, active ? 7001 : 11]);
      h.open(P, S, 0, active);
      h.p(P.data(0, 500), 1);
      h.s(S.data(0, 500), 1);
      ticks(h, 100, 60_000);
      const d = h.p(P.data(500, 700, {}, true), 60_050);
      h.s(S.data(500, 700, {}, true), 60_060);
      expect(h.isReleased(d)).toBe(true);
      const last = h.p(P.ack(1201), 60_070);
      expect(h.isReleased(last)).toBe(true);
      ticks(h, 60_100, 70_000);
      expect(causes(h)).toEqual([]);
      h.finish();
    });
  }
});
