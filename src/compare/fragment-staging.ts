/**
 * FragmentStaging: the primary's IP fragments held while the Defragmenter rebuilds their
 * datagram. The Defragmenter keeps its own references and hands back a new, whole datagram;
 * what goes to the client must be the ORIGINAL fragment frames, so the engine holds each one
 * here (an EntryStore entry, counted as held) and, when the datagram completes, takes every
 * staged fragment of it back — they are then released, in arrival order, once the datagram
 * matched. Keys are matched by hash, then verified word by word (a re-decode of the staged
 * frame: fragments are rare, this is not a hot path).
 */
import { FRAG_KEY_WORDS, fragKey } from '../flow/frag-key.js';
import { hashWords } from '../flow/hash.js';
import { decodeFrame } from '../packet/decode.js';
import type { PacketPool } from '../packet/pool.js';
import { PacketView } from '../packet/view.js';
import { auxPush, newAuxFifo, NIL, type AuxFifo, type EntryStore } from './entries.js';

const SEED = 0x5eed_f4a9;

export class FragmentStaging {
  /** Staged entries in arrival order (via EntryStore.aux). */
  readonly list: AuxFifo = newAuxFifo();
  readonly #store: EntryStore;
  readonly #pool: PacketPool;
  readonly #key = new Int32Array(FRAG_KEY_WORDS);
  readonly #other = new Int32Array(FRAG_KEY_WORDS);
  readonly #view = new PacketView();

  constructor(store: EntryStore, pool: PacketPool) {
    this.#store = store;
    this.#pool = pool;
  }

  /** Hash of fragment `v`'s reassembly key; the key is kept for the next `take`. */
  keyOf(v: PacketView): number {
    fragKey(v, this.#key);
    return hashWords(this.#key, 0, FRAG_KEY_WORDS, SEED);
  }

  add(e: number, hash: number): void {
    this.#store.keyHash[e] = hash;
    auxPush(this.#store, this.list, e);
  }

  /**
   * Move every staged fragment with the key of the last `keyOf` call out of staging into
   * `out` (cleared first), in arrival order.
   */
  take(hash: number, out: number[]): void {
    out.length = 0;
    const st = this.#store;
    const f = this.list;
    let prev = NIL;
    let x = f.head;
    while (x !== NIL) {
      const n = st.aux[x]!;
      if (st.keyHash[x] === hash && this.#sameKey(x)) {
        if (prev === NIL) f.head = n;
        else st.aux[prev] = n;
        if (f.tail === x) f.tail = prev;
        st.aux[x] = NIL;
        f.count--;
        f.bytes -= st.bytes[x]!;
        out.push(x);
      } else {
        prev = x;
      }
      x = n;
    }
  }

  #sameKey(e: number): boolean {
    const pool = this.#pool;
    const h = this.#store.handle[e]!;
    const v = this.#view;
    decodeFrame(v, pool.buffer(h), pool.offset(h), pool.length(h), pool.tag[h]!);
    if (v.ipAddrLen === 0) return false;
    fragKey(v, this.#other);
    const a = this.#key;
    const b = this.#other;
    for (let i = 0; i < FRAG_KEY_WORDS; i++) if (a[i] !== b[i]) return false;
    return true;
  }
}
