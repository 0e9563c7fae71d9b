/**
 * What every datagram-style socket shares (UDP, raw): decoding received records into
 * MessageInfo with the arrival interface, destination and hop limit, and turning send
 * options into per-packet control data. UdpSocket and RawSocket extend it.
 * @packageDocumentation
 */
import { invalidArgType, invalidArgValue, noSuchInterface } from './errors';
import { encode as encodeHopByHop, HopByHopOption } from './hopbyhop';
import { InterfaceRef, InterfaceSpec, list as listInterfaces } from './interfaces';
import { RecordHalf, RecordWord } from './native';
import { BaseSocket, NO_CONTROL, SendControl } from './socket';
import { Family, validateAddress, validateInteger, validateInterfaceName } from './validate';

/** What ip6sock knows about one received datagram. */
export interface MessageInfo {
  /** Source address; link-local IPv6 sources carry `%interface`. */
  address: string;
  port: number;
  family: Family;
  /** Arrival interface (from IPV6_PKTINFO / IP_PKTINFO). */
  interface: InterfaceRef | null;
  /** The address the datagram was sent to (a multicast group, an anycast address, ...). */
  destination: string | null;
  /** Hop limit (IPv6) or TTL (IPv4) the datagram arrived with. */
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

/** Base of the sockets that deliver datagrams as ('message', data, info). */
export abstract class DatagramSocket extends BaseSocket<Message> {
  /** Resolves a destination and its zone; subclasses use it for their own address checks. */
  protected destination(address: unknown, name = 'address'): { address: string; scopeId: number } {
    const parts = validateAddress(address, name, this.family);
    let scopeId = 0;
    if (parts.zone !== undefined) {
      const zone = /^\d+$/.test(parts.zone) ? Number(parts.zone) : parts.zone;
      scopeId = this.ifindex(zone, 'address zone');
    }
    return { address: parts.address, scopeId };
  }

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

  protected dispatch(count: number, data: Buffer, meta: Buffer): void {
    const wantEvents = this.listenerCount('message') > 0;
    const wantItems = this.hasIterators;
    const words = this.recordWords(meta);
    for (let i = 0; i < count; i++) {
      const w = i * RecordWord.size;
      const offset = words[w + RecordWord.dataOffset];
      const length = words[w + RecordWord.dataLength];
      const info = this.decode(words, w, meta, data, length);
      if (!this.accept(info, this.sourceCache.current)) continue;
      const payload = data.subarray(offset, offset + length);
      if (wantEvents) this.emit('message', payload, info);
      if (wantItems) this.pushToIterators({ data: payload, info });
      if (this.closed) return;
    }
  }

  private indexByName = new Map<string, number>();

  /**
   * The ifindex for an interface given per packet, without a netlink dump per send: an
   * index goes to the kernel as it is (an unknown one fails the send with ENODEV), a name
   * is looked up in a per-socket cache refreshed only when a name is not in it.
   */
  protected ifindex(spec: unknown, name: string): number {
    if (typeof spec === 'number') return validateInteger(spec, name, 1, 0x7fffffff);
    if (typeof spec !== 'string') throw invalidArgType(name, 'an interface index (number) or name (string)', spec);
    validateInterfaceName(spec, name);
    let index = this.indexByName.get(spec);
    if (index === undefined) {
      this.indexByName = new Map(listInterfaces({ netns: this.netns }).map((i) => [i.name, i.index]));
      index = this.indexByName.get(spec);
      if (index === undefined) throw noSuchInterface(spec, this.netns);
    }
    return index;
  }

  /**
   * Subclass hook: false drops a received datagram before it is emitted. `source` is
   * info.address without its zone.
   */
  protected accept(info: MessageInfo, source: string): boolean {
    void info;
    void source;
    return true;
  }

  /** Decodes the metadata record at byte `at` of `meta`. */
  protected info(meta: Buffer, at: number, data: Buffer, size: number): MessageInfo {
    return this.decode(this.recordWords(meta), at >> 2, meta, data, size);
  }

  /** Decodes the record at word `w` of `words` (the Int32 view of `meta`). */
  private decode(words: Int32Array, w: number, meta: Buffer, data: Buffer, size: number): MessageInfo {
    const family = this.recordHalves[w * 2 + RecordHalf.family] === 4 ? 4 : 6;
    const ifindex = words[w + RecordWord.ifindex];
    const hopLimit = words[w + RecordWord.hopLimit];
    const tclass = words[w + RecordWord.tclass];
    const hopLen = words[w + RecordWord.hopOptsLength];
    let hopByHop: Buffer | null = null;
    if (hopLen > 0) {
      const hopAt = words[w + RecordWord.hopOptsOffset];
      hopByHop = data.subarray(hopAt, hopAt + hopLen);
    }
    const truncated = this.recordTruncated(words, w);
    const source = this.sourceCache.format(meta, words, w + RecordWord.source, family);
    const scopeId = words[w + RecordWord.scopeId];
    return {
      address: scopeId === 0 ? source : this.withZone(source, scopeId >>> 0),
      port: this.recordHalves[w * 2 + RecordHalf.port],
      family,
      interface: ifindex > 0 ? this.names.ref(ifindex) : null,
      destination: words[w + RecordWord.hasDestination] === 1 ? this.destinationCache.format(meta, words, w + RecordWord.destination, family) : null,
      hopLimit: hopLimit >= 0 ? hopLimit : null,
      trafficClass: tclass >= 0 ? tclass : null,
      hopByHop,
      truncated,
      size,
    };
  }
}
