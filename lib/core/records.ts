/**
 * The one reader of received-message records. The native side reads a batch of datagrams
 * (one recvmmsg), copies their payloads into a pool buffer and describes each in a record
 * of the metadata buffer (MessageRecord, native/socket.h), then makes one call into
 * JavaScript. Every dispatcher (datagram sockets, anycast services, router-alert taps, the
 * interface watcher) reads that batch through a RecordBatch: typed accessors by record
 * index, over typed arrays of the metadata buffer (host byte order, as the native side
 * writes it), with offsets from the addon's own layout.
 *
 * A RecordBatch is also the channel that says whether the pool may be reused: every
 * accessor that hands out a view of the pool (payload(), hopByHop(), keepData()) marks the
 * batch kept; `released` is true when none did, and then the native side writes the next
 * batch over the same bytes (no allocation per read for a receiver that only looks).
 * @internal
 * @packageDocumentation
 */
import { AddressCache } from '../codec/ipv6addr';
import { constants, layouts } from './native';

/** Int32 indexes of the record's 32-bit fields and Uint16 indexes of its 16-bit ones. */
interface RecordIndexes {
  /** Bytes per record. */
  readonly size: number;
  /** Int32 words per record. */
  readonly words: number;
  readonly dataOffset: number;
  readonly dataLength: number;
  readonly flags: number;
  readonly scopeId: number;
  readonly ifindex: number;
  readonly hopLimit: number;
  readonly tclass: number;
  readonly hopOptsOffset: number;
  readonly hopOptsLength: number;
  readonly source: number;
  readonly destination: number;
  readonly hasDestination: number;
  /** Uint16 halves per record. */
  readonly halves: number;
  readonly family: number;
  readonly port: number;
  /** Byte offset of the destination address. */
  readonly destinationByte: number;
  /** msg_flags bit of a datagram longer than its slot. */
  readonly msgTrunc: number;
}

let indexes: RecordIndexes | undefined;

/** The record layout as typed-array indexes, worked out once from the addon's offsets. */
function recordIndexes(): RecordIndexes {
  if (indexes !== undefined) return indexes;
  const r = layouts().record;
  const word = (name: keyof typeof r): number => {
    if (r[name] % 4 !== 0) throw new Error(`ip6sock: the addon's record field ${name} is not 4-byte aligned; rebuild the addon`);
    return r[name] / 4;
  };
  const half = (name: keyof typeof r): number => {
    if (r[name] % 2 !== 0) throw new Error(`ip6sock: the addon's record field ${name} is not 2-byte aligned; rebuild the addon`);
    return r[name] / 2;
  };
  indexes = Object.freeze({
    size: r.size,
    words: word('size'),
    dataOffset: word('dataOffset'),
    dataLength: word('dataLength'),
    flags: word('flags'),
    scopeId: word('scopeId'),
    ifindex: word('ifindex'),
    hopLimit: word('hopLimit'),
    tclass: word('tclass'),
    hopOptsOffset: word('hopOptsOffset'),
    hopOptsLength: word('hopOptsLength'),
    source: word('source'),
    destination: word('destination'),
    hasDestination: word('hasDestination'),
    halves: half('size'),
    family: half('family'),
    port: half('port'),
    destinationByte: r.destination,
    msgTrunc: constants().MSG_TRUNC,
  });
  return indexes;
}

const EMPTY = Buffer.alloc(0);

/**
 * One batch of received records, read by index (0 .. count-1). One RecordBatch serves a
 * socket for its life: load() points it at the next batch, and the typed views of the
 * metadata buffer are made again only when the native side hands over a new one. Its
 * accessors are valid only during the call that delivered the batch (the metadata buffer is
 * reused); the Buffers payload() and hopByHop() return stay valid for good.
 */
export class RecordBatch {
  /** Records in the batch. */
  count = 0;
  private readonly at: RecordIndexes = recordIndexes();
  private pool: Buffer = EMPTY;
  private meta: Buffer = EMPTY;
  private words: Int32Array = new Int32Array(0);
  private halves: Uint16Array = new Uint16Array(0);
  private kept = false;

  /** Points the reader at a new batch; nothing is marked kept yet. */
  load(count: number, data: Buffer, meta: Buffer): this {
    if (meta !== this.meta) {
      this.meta = meta;
      this.words = new Int32Array(meta.buffer, meta.byteOffset, meta.length >> 2);
      this.halves = new Uint16Array(meta.buffer, meta.byteOffset, meta.length >> 1);
    }
    this.pool = data;
    this.count = count;
    this.kept = false;
    return this;
  }

  /** Forgets the buffers (the socket closed): nothing here keeps them alive. */
  clear(): void {
    this.pool = EMPTY;
    this.meta = EMPTY;
    this.words = new Int32Array(0);
    this.halves = new Uint16Array(0);
    this.count = 0;
  }

  /**
   * True when no view of this batch's data was handed out since load(): the native side
   * may then write the next batch over it.
   */
  get released(): boolean {
    return !this.kept;
  }

  /** The whole data buffer, for a reader that keeps views of it its own way; marks the batch kept. */
  keepData(): Buffer {
    this.kept = true;
    return this.pool;
  }

  /** Offset of record `i`'s payload in the data buffer. */
  dataOffset(i: number): number {
    return this.words[i * this.at.words + this.at.dataOffset];
  }

  /** Bytes of record `i`'s payload. */
  dataLength(i: number): number {
    return this.words[i * this.at.words + this.at.dataLength];
  }

  /** Record `i`'s payload: a view of the data buffer, valid for good (marks the batch kept). */
  payload(i: number): Buffer {
    const w = i * this.at.words;
    const offset = this.words[w + this.at.dataOffset];
    this.kept = true;
    return this.pool.subarray(offset, offset + this.words[w + this.at.dataLength]);
  }

  /** msg_flags of record `i`. */
  flags(i: number): number {
    return this.words[i * this.at.words + this.at.flags];
  }

  /** True if record `i`'s datagram was longer than its slot (MSG_TRUNC). */
  truncated(i: number): boolean {
    return (this.words[i * this.at.words + this.at.flags] & this.at.msgTrunc) !== 0;
  }

  /** Address family of record `i`'s source: 6 or 4 (0 for a netlink message). */
  family(i: number): number {
    return this.halves[i * this.at.halves + this.at.family];
  }

  /** Source port of record `i` (0 for raw sockets). */
  port(i: number): number {
    return this.halves[i * this.at.halves + this.at.port];
  }

  /** Scope id of record `i`'s source (unsigned). */
  scopeId(i: number): number {
    return this.words[i * this.at.words + this.at.scopeId] >>> 0;
  }

  /** Arrival interface index of record `i`; -1 or 0 when unknown. */
  ifindex(i: number): number {
    return this.words[i * this.at.words + this.at.ifindex];
  }

  /** Hop limit (TTL) record `i` arrived with; -1 when unknown. */
  hopLimit(i: number): number {
    return this.words[i * this.at.words + this.at.hopLimit];
  }

  /** Traffic class (TOS) of record `i`; -1 when unknown. */
  tclass(i: number): number {
    return this.words[i * this.at.words + this.at.tclass];
  }

  /** Record `i`'s hop-by-hop header (a view of the data buffer, marking it kept), or null. */
  hopByHop(i: number): Buffer | null {
    const w = i * this.at.words;
    const length = this.words[w + this.at.hopOptsLength];
    if (length <= 0) return null;
    const offset = this.words[w + this.at.hopOptsOffset];
    this.kept = true;
    return this.pool.subarray(offset, offset + length);
  }

  /** True when record `i` carries its destination (PKTINFO). */
  hasDestination(i: number): boolean {
    return this.words[i * this.at.words + this.at.hasDestination] === 1;
  }

  /** Record `i`'s source address (without zone), formatted through `cache`. */
  source(i: number, cache: AddressCache): string {
    const w = i * this.at.words;
    return cache.format(this.meta, this.words, w + this.at.source, this.family(i) === 4 ? 4 : 6);
  }

  /** Record `i`'s destination (without zone), formatted through `cache`, or null without PKTINFO. */
  destination(i: number, cache: AddressCache): string | null {
    const w = i * this.at.words;
    if (this.words[w + this.at.hasDestination] !== 1) return null;
    return cache.format(this.meta, this.words, w + this.at.destination, this.family(i) === 4 ? 4 : 6);
  }

  /** True when record `i` has a destination and it is the 16 bytes of `address`. */
  destinationIs(i: number, address: Buffer): boolean {
    if (!this.hasDestination(i)) return false;
    const at = i * this.at.size + this.at.destinationByte;
    return address.compare(this.meta, at, at + 16) === 0;
  }

  /**
   * Records `from` .. count-1 as a batch of their own that outlives this call: a copy of
   * their records over the same data buffer (which this marks kept).
   */
  rest(from: number): { count: number; data: Buffer; meta: Buffer } {
    const size = this.at.size;
    return { count: this.count - from, data: this.keepData(), meta: Buffer.from(this.meta.subarray(from * size, this.count * size)) };
  }
}
