/**
 * What every datagram-style socket shares (UDP, raw): decoding received records into
 * MessageInfo with the arrival interface, destination and hop limit, and turning send
 * options into per-packet control data. UdpSocket and RawSocket extend it.
 * @packageDocumentation
 */
import { invalidArgType, invalidArgValue, outOfRange, stateError } from '../errors';
import { encode as encodeHopByHop, HopByHopOption } from '../codec/hopbyhop';
import type { InterfaceRef, InterfaceSpec } from '../links/types';
import { constants } from '../core/native';
import { RecordBatch } from '../core/records';
import { eventMap, Events, listenerThrew } from '../core/events';
import { BaseSocket, NO_CONTROL, SendControl, SocketEvents } from './socket';
import { Family, parseZone, validateAddress, validateInteger } from '../validate';

/** What ip6sock knows about one received datagram. */
export interface MessageInfo {
  /** Source address; link-local IPv6 sources carry `%interface`. */
  address: string;
  port: number;
  family: Family;
  /**
   * Arrival interface (from IPV6_PKTINFO / IP_PKTINFO). With `receivePacketInfo: false`,
   * the `device` the socket is bound to, or null.
   */
  interface: InterfaceRef | null;
  /**
   * The address the datagram was sent to (a multicast group, an anycast address, ...);
   * null with `receivePacketInfo: false`.
   */
  destination: string | null;
  /** Hop limit (IPv6) or TTL (IPv4) the datagram arrived with; null with `receiveHopLimit: false`. */
  hopLimit: number | null;
  /** Traffic class / TOS, when `receiveTrafficClass` is on. */
  trafficClass: number | null;
  /** The raw hop-by-hop options header, when `receiveHopByHop` is on and the datagram had one. */
  hopByHop: Buffer | null;
  /** The datagram was longer than maxMessageSize and was cut. */
  truncated: boolean;
  /** Bytes received. */
  size: number;
}

/** One received datagram, as the async iterator yields it. */
export interface Message {
  data: Buffer;
  info: MessageInfo;
}

/** Where and how one datagram leaves. */
export interface SendOptions {
  /** Destination address (omit on a connected socket). Link-local may carry %interface. */
  address?: string;
  /** Destination port (omit on a connected socket). */
  port?: number;
  /** Leave through this interface (index or name): IPV6_PKTINFO / IP_PKTINFO. */
  interface?: InterfaceSpec;
  /** Source address for this datagram (must be one of the host's, or a joined anycast address). */
  source?: string;
  /** Hop limit (TTL) for this datagram, 0-255. */
  hopLimit?: number;
  /** Traffic class (TOS) for this datagram, 0-255. */
  trafficClass?: number;
  /** Hop-by-hop options for this datagram (IPv6; needs CAP_NET_RAW). */
  hopByHop?: HopByHopOption[] | Buffer;
}

/** Accepts encoded options (a whole header) or a list of options to encode. */
export function hopByHopHeader(value: unknown, name: string): Buffer {
  if (Buffer.isBuffer(value)) {
    if (value.length < 8 || value.length % 8 !== 0 || value.length > 2048 || value.length !== (value[1] + 1) * 8) {
      throw invalidArgValue(name, value, 'must be a whole hop-by-hop header: a multiple of 8 bytes, 8 to 2048, matching its length byte');
    }
    return value;
  }
  if (Array.isArray(value)) return encodeHopByHop(value as HopByHopOption[]);
  throw invalidArgType(name, 'an array of hop-by-hop options or a Buffer', value);
}

/**
 * The datagrams of one read from the kernel (one recvmmsg), as the 'batch' event hands
 * them over: one call for many datagrams, and nothing allocated but what the listener
 * asks for, for receivers that count, aggregate or copy at high rates.
 *
 * The batch reads records that the next read reuses, so it can be read only while the
 * listener runs (afterwards every method throws ERR_INVALID_STATE); the Buffers `data(i)`
 * returns stay valid for good (bytes handed out are never overwritten). A listener that
 * takes no Buffer (no `data(i)`, no iteration, no `info(i).hopByHop`) lets the next read
 * land in the same memory, so it allocates nothing per read.
 *
 * ```ts
 * sock.on('batch', (batch) => {
 *   for (let i = 0; i < batch.length; i++) bytes += batch.size(i);
 * });
 * ```
 * 'batch' comes after the batch's 'message' events, if there are listeners to both.
 */
export interface MessageBatch extends Iterable<Message> {
  /** Datagrams in the batch. */
  readonly length: number;
  /** Bytes in datagram `i`. */
  size(i: number): number;
  /** The payload of datagram `i`: a view of the received bytes, valid for good. */
  data(i: number): Buffer;
  /** What is known about datagram `i` (arrival interface, destination, hop limit, ...). */
  info(i: number): MessageInfo;
}

/** The MessageBatch of one read: indexes into the read's records. */
class ReceivedBatch implements MessageBatch {
  private live = true;

  constructor(
    readonly length: number,
    /** Record of each datagram admitted, or null when every record of the read was. */
    private readonly picks: Int32Array | null,
    /** The read's records; handing out a view of its data marks it kept. */
    private readonly records: RecordBatch,
    private readonly decode: (i: number) => MessageInfo,
  ) {}

  size(i: number): number {
    return this.records.dataLength(this.record(i));
  }

  data(i: number): Buffer {
    return this.records.payload(this.record(i));
  }

  info(i: number): MessageInfo {
    return this.decode(this.record(i));
  }

  *[Symbol.iterator](): Iterator<Message> {
    for (let i = 0; i < this.length; i++) yield { data: this.data(i), info: this.info(i) };
  }

  /** The listener returned: the records are about to be reused. */
  end(): void {
    this.live = false;
  }

  /** The index in the read of datagram `i`. */
  private record(i: number): number {
    if (!this.live) throw stateError('ERR_INVALID_STATE', "Invalid state: a MessageBatch can be read only inside its 'batch' listener");
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= this.length) {
      if (typeof i !== 'number') throw invalidArgType('index', 'an integer', i);
      throw outOfRange('index', `an integer from 0 to ${this.length - 1}`, i);
    }
    return this.picks === null ? i : this.picks[i];
  }
}

/** Events of the sockets that receive datagrams (UdpSocket, MulticastSocket, RawSocket). */
export interface DatagramSocketEvents extends SocketEvents {
  /** One datagram: its payload (a view valid for good) and what is known about it. */
  message: [data: Buffer, info: MessageInfo];
  /** The datagrams of one read from the kernel, after their 'message' events (see MessageBatch). */
  batch: [batch: MessageBatch];
}

/** Base of the sockets that deliver datagrams as ('message', data, info) and ('batch', batch). */
export abstract class DatagramSocket extends BaseSocket<Message> {
  /** @internal */
  declare readonly [eventMap]: Events<DatagramSocketEvents>;

  /**
   * Sets the hop limit (TTL) of every unicast datagram (raw: packet) this socket sends
   * (the `hopLimit` option): 0-255, IPv4 1-255. A per-datagram `hopLimit` in send() still wins.
   */
  setHopLimit(hopLimit: number): void {
    this.assertOpen();
    this.applyHopLimit(hopLimit, 'hopLimit');
  }

  /** The unicast hop limit (TTL) as the kernel has it (its default: the route's, usually 64). */
  getHopLimit(): number {
    this.assertOpen();
    const c = constants();
    return this.family === 6 ? this.getInt(c.IPPROTO_IPV6, c.IPV6_UNICAST_HOPS, 'IPV6_UNICAST_HOPS') : this.getInt(c.IPPROTO_IP, c.IP_TTL, 'IP_TTL');
  }

  /** Sets IPV6_UNICAST_HOPS / IP_TTL from an option or setHopLimit()'s argument, validated as `name`. */
  protected applyHopLimit(value: unknown, name: string): void {
    const c = constants();
    if (this.family === 6) this.setInt(c.IPPROTO_IPV6, c.IPV6_UNICAST_HOPS, validateInteger(value, name, 0, 255), 'IPV6_UNICAST_HOPS');
    else this.setInt(c.IPPROTO_IP, c.IP_TTL, validateInteger(value, name, 1, 255), 'IP_TTL');
  }

  /** Resolves a destination and its zone; subclasses use it for their own address checks. */
  protected destination(address: unknown, name = 'address'): Readonly<{ address: string; scopeId: number }> {
    // A stream of sends repeats its destination: checking the text again would cost more
    // than the send. Only addresses without a zone are kept (a zone's name can move).
    if (typeof address === 'string' && address === this.sentTo.text) return this.sentTo.result;
    const parts = validateAddress(address, name, this.family);
    if (parts.zone === undefined) {
      const result = { address: parts.address, scopeId: 0 };
      this.sentTo = { text: address as string, result };
      return result;
    }
    return { address: parts.address, scopeId: this.directory.index(parseZone(parts.zone, 'address zone'), 'address zone') };
  }

  private sentTo: { text: string | undefined; result: { address: string; scopeId: number } } = { text: undefined, result: { address: '', scopeId: 0 } };

  /** Builds the control data for one send from its options. */
  protected control(opts: SendOptions): SendControl {
    if (opts.interface === undefined && opts.source === undefined && opts.hopLimit === undefined && opts.trafficClass === undefined && opts.hopByHop === undefined) {
      return NO_CONTROL;
    }
    const ctl: SendControl = { ...NO_CONTROL };
    if (opts.interface !== undefined) ctl.ifindex = this.ifindex(opts.interface, 'options.interface');
    if (opts.source !== undefined) ctl.source = validateAddress(opts.source, 'options.source', this.family, false).address;
    if (opts.hopLimit !== undefined) ctl.hopLimit = validateInteger(opts.hopLimit, 'options.hopLimit', 0, 255);
    if (opts.trafficClass !== undefined) ctl.trafficClass = validateInteger(opts.trafficClass, 'options.trafficClass', 0, 255);
    if (opts.hopByHop !== undefined) {
      if (this.family !== 6) throw invalidArgValue('options.hopByHop', opts.hopByHop, 'is IPv6 only');
      ctl.hopByHop = hopByHopHeader(opts.hopByHop, 'options.hopByHop');
    }
    return ctl;
  }

  /**
   * Emits the batch's datagrams: 'message' events and iterator items for each admitted one
   * (forEachRecord's loop), then one 'batch'. The pool is reused when no view of it was
   * handed out (a 'batch' listener that only read sizes and info, or nothing admitted):
   * `records` tracks that.
   */
  protected dispatch(records: RecordBatch): void {
    const wantEvents = this.listenerCount('message') > 0;
    const wantItems = this.hasIterators;
    const wantBatch = this.listenerCount('batch') > 0;
    const events: DatagramSocket = this;
    const count = records.count;
    // Records of datagrams admitted, for the batch; null while every one so far was.
    let picks: Int32Array | null = null;
    let picked = 0;
    const all = this.forEachRecord(records, (i) => {
      this.countRecord(records, i);
      if (!this.admits(records, i)) {
        if (picks === null && wantBatch) picks = Int32Array.from({ length: count }, (_, k) => k);
        return;
      }
      if (picks !== null) picks[picked] = i;
      picked++;
      if (!wantEvents && !wantItems) return;
      const info = this.decode(records, i);
      const payload = records.payload(i);
      // Iterators first: a listener that throws must not cost them the datagram.
      if (wantItems) this.pushToIterators({ data: payload, info });
      if (wantEvents) events.emit('message', payload, info);
    });
    if (!all || !wantBatch || picked === 0 || this.closed) return;
    const batch = new ReceivedBatch(picked, picks, records, (i) => this.decode(records, i));
    try {
      events.emit('batch', batch);
    } catch (err) {
      listenerThrew(err);
    } finally {
      batch.end();
    }
  }

  protected override isReceiveEvent(event: string | symbol): boolean {
    return event === 'batch' || super.isReceiveEvent(event);
  }

  protected override hasReceiveListeners(): boolean {
    return this.listenerCount('batch') > 0 || super.hasReceiveListeners();
  }

  /**
   * The ifindex for an interface given per packet: an index goes to the kernel as it is (an
   * unknown one fails the send with ENODEV), a name is looked up in the directory.
   */
  protected ifindex(spec: unknown, name: string): number {
    return this.directory.index(spec, name);
  }

  /** Subclass hook: false drops the datagram of record `i` before anybody sees it. */
  protected admits(records: RecordBatch, i: number): boolean {
    void records;
    void i;
    return true;
  }

  /** The source address of record `i` (without zone), formatted once per source. */
  protected recordSource(records: RecordBatch, i: number): string {
    return records.source(i, this.sourceCache);
  }

  /** The destination (from PKTINFO) of record `i`, or null. */
  protected recordDestination(records: RecordBatch, i: number): string | null {
    return records.destination(i, this.destinationCache);
  }

  /** What is known about record `i`'s datagram. */
  protected decode(records: RecordBatch, i: number): MessageInfo {
    const ifindex = records.ifindex(i);
    const hopLimit = records.hopLimit(i);
    const tclass = records.tclass(i);
    const source = records.source(i, this.sourceCache);
    return {
      address: this.withZone(source, records.scopeId(i)),
      port: records.port(i),
      family: records.family(i) === 4 ? 4 : 6,
      interface: ifindex > 0 ? this.names.ref(ifindex) : null,
      destination: records.destination(i, this.destinationCache),
      hopLimit: hopLimit >= 0 ? hopLimit : null,
      trafficClass: tclass >= 0 ? tclass : null,
      hopByHop: records.hopByHop(i),
      truncated: records.truncated(i),
      size: records.dataLength(i),
    };
  }
}
