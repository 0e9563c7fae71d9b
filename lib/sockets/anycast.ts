/**
 * AnycastGroup: an IPv6 anycast address held by the service that answers it.
 *
 * Linux lets a socket join an anycast address on one interface (IPV6_JOIN_ANYCAST, the API
 * of the 2002 USAGI patch): while at least one socket holds a join, the host answers
 * neighbour solicitations for the address (Override=0) and delivers packets sent to it;
 * when the last join goes, the address is forgotten. So the address lives exactly as long
 * as the service: a daemon that exits or crashes stops attracting traffic, and the other
 * members of the group on the link take it over.
 *
 * An AnycastGroup owns one socket and makes exactly one join on it, undone by close()
 * (IPV6_LEAVE_ANYCAST, then the fd closes). With a `port` the group is also a UDP service
 * whose replies leave FROM the anycast address, which plain sockets cannot do.
 *
 * Link flaps: when an interface goes down (IFF_UP cleared) the kernel deletes the local
 * `anycast` route of every address joined on it, but keeps the join itself:
 * /proc/net/anycast6 still lists it with its users, and nothing puts the route back when
 * the link comes up, with or without keep_addr_on_down. Without the route nothing sent to
 * the address reaches the host. The route is created only with the kernel's entry, when
 * the first join of the address comes, and goes only with it, when the last join leaves:
 * so the group heals by leaving and joining again, every group of the process holding that
 * address on that interface together (see rejoinAll). A loss of carrier alone (IFF_RUNNING)
 * leaves the route in place.
 * @packageDocumentation
 */
import { EmitterEvents, eventMap, Events, TypedEmitter } from '../core/events';
import { closedError, ErrorContext, interfaceLabel, interfaceRemovedError, invalidArgType, invalidArgValue, stateError, warn, withContext } from '../errors';
import type { InterfaceRef, InterfaceSpec } from '../links/types';
import { directoryOf, Follower, Following, InterfaceDirectory } from '../links/directory';
import { formatIpv6, parseIpv6 } from '../codec/ipv6addr';
import { constants, NativeSocket } from '../core/native';
import { RecordBatch } from '../core/records';
import { AddressTableEntry, anycast6 } from '../links/procnet';
import type { AddressEvent, LinkEvent } from '../links/watcher';
import { inspect } from 'node:util';
import { BaseSocket, NO_CONTROL, SendControl, SOCKET_OPTION_KEYS, SocketOptions } from './socket';
import { Message, MessageInfo, UdpSocket, UdpSocketEvents, UdpSocketOptions } from './udp';
import { HopByHopOption } from '../codec/hopbyhop';
import { netnsPath, optionKeys, toBuffer, validateInteger, validateObject, validateOptionalObject, validateOptionKeys, validatePort } from '../validate';

/** Options of an AnycastGroup. */
export interface AnycastGroupOptions extends Omit<UdpSocketOptions, 'family' | 'address' | 'ipv6Only' | 'port' | 'receivePacketInfo'> {
  /**
   * The interface to join on: an index or a name. Required: with index 0 the kernel would
   * pick one by route lookup, and the address would end up wherever the routing table
   * happens to point today.
   */
  interface: InterfaceSpec;
  /**
   * Serve UDP on this port: datagrams sent to the anycast address and this port arrive as
   * 'message' events whose info can reply (info.reply). 0 lets the kernel pick a port. Omit
   * it for a group that only holds the address (for ping, or for a service on another socket).
   */
  port?: number;
}

const ANYCAST_KEYS = optionKeys<AnycastGroupOptions>({
  ...SOCKET_OPTION_KEYS,
  interface: true,
  port: true,
  reuseAddr: true,
  reusePort: true,
  hopLimit: true,
  receiveHopLimit: true,
  receiveHopByHop: true,
  receiveTrafficClass: true,
  hopByHop: true,
});
const LIST_KEYS = optionKeys<{ netns?: string }>({ netns: true });

/** How one reply leaves (it always leaves from the anycast address, out of the arrival interface). */
export interface ReplyOptions {
  /** Hop limit of this reply, 0-255; default the group's `hopLimit`. */
  hopLimit?: number;
  /** Traffic class of this reply, 0-255. */
  trafficClass?: number;
}
const REPLY_KEYS = optionKeys<ReplyOptions>({ hopLimit: true, trafficClass: true });

/**
 * Sends one datagram back to the sender, FROM the anycast address; resolves with the bytes
 * sent. A failure nobody handles goes to the group's `'error'` event (see UdpSocket.send()).
 */
export type AnycastReply = (data: Buffer | Uint8Array | string, options?: ReplyOptions) => Promise<number>;

/** What is known about a datagram addressed to the group, and how to answer it. */
export interface AnycastMessageInfo extends MessageInfo {
  /** Answers the sender from the anycast address, out of the interface the datagram came in on. */
  reply: AnycastReply;
}

/** One datagram addressed to the group, as the async iterator yields it. */
export interface AnycastMessage extends Message {
  info: AnycastMessageInfo;
}

/** Events of an AnycastGroup. */
export interface AnycastGroupEvents extends EmitterEvents {
  /** A datagram addressed to the group (serving groups only); `info.reply()` answers from the anycast address. */
  message: [data: Buffer, info: AnycastMessageInfo];
  /** The group's interface was removed (the kernel dropped the join), or its socket failed. */
  error: [err: Error];
  /**
   * The address stopped reaching the host: its interface went down, and the kernel deleted
   * the address's route with it. The group stays open and heals when the link returns.
   */
  down: [event: AnycastStateEvent];
  /** The address reaches the host again after a 'down': the group re-joined it. */
  up: [event: AnycastStateEvent];
  /** A problem that does not stop the group; without a listener it becomes a process warning. */
  warning: [warning: Error];
  /** The group was left and its socket closed. */
  close: [];
}

/**
 * Whether an anycast address currently reaches the host: 'up' while the kernel holds its
 * join with a route, 'down' while its interface is down or the join waits for an address.
 */
export type AnycastState = 'up' | 'down';

/** What an AnycastGroup's 'down' and 'up' events carry. */
export interface AnycastStateEvent {
  /** The state the group is now in. */
  state: AnycastState;
  /** The group's interface, with its current name. */
  interface: InterfaceRef;
  /**
   * Why: 'link-down' (the interface went down), 'link-up' (it came back and the join was
   * renewed), 'address-added' (an address of the interface returned, which a host needs
   * before the join is accepted again), 'rejoin-failed' (renewing the join failed; a
   * 'warning' says why).
   */
  reason: 'link-down' | 'link-up' | 'address-added' | 'rejoin-failed';
}

/** Counters of a group (all zero for a group without a port); live, like a socket's. */
export interface AnycastStats {
  /** Datagrams addressed to the anycast address and delivered to the group. */
  received: number;
  /**
   * Datagrams that reached the group's port with another destination (a unicast address of
   * the host): the socket is bound to `::`, so the kernel hands them over; they are dropped.
   */
  ignored: number;
  /** Datagrams the kernel dropped because the receive buffer was full. */
  kernelDrops: number;
  /** Datagrams longer than maxMessageSize, delivered truncated. */
  truncated: number;
}

/** One line of /proc/net/anycast6: an address, the interface it is joined on, and how many joins hold it. */
export type AnycastEntry = AddressTableEntry;

/** What a socket joins: the address (text and bytes) on one interface, in one namespace. */
interface JoinTarget {
  readonly address: string;
  readonly bytes: Buffer;
  readonly interface: InterfaceRef;
  readonly netns: string | undefined;
}

const JOIN_HINTS: Readonly<Record<string, string>> = {
  EPERM: "joining an anycast address needs CAP_NET_ADMIN in the socket's network namespace",
  EADDRNOTAVAIL:
    'on a host (forwarding off on that interface) an anycast address must lie inside the prefix of an address of that interface; only a router (forwarding on) may join any address',
  EINVAL: 'the address is multicast, or the host already owns it as a unicast address',
  ENODEV: 'no such interface',
  ENOMEM: 'every join is charged to net.core.optmem_max, which is exhausted',
};

/** The one join of a socket, with the errno explained. */
function join(handle: NativeSocket, target: JoinTarget): void {
  try {
    handle.ipv6Mreq(constants().IPV6_JOIN_ANYCAST, target.address, target.interface.index);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw withContext(err, {
      option: 'IPV6_JOIN_ANYCAST',
      address: target.address,
      interface: interfaceLabel(target.interface),
      netns: target.netns,
      hint: typeof code === 'string' ? JOIN_HINTS[code] : undefined,
    });
  }
}

/**
 * Undoes the join before the fd closes. A failure is not an error worth reporting: closing
 * the fd drops every join of the socket anyway, and ENOENT only means the kernel already
 * dropped it (the interface was deleted).
 */
function leave(handle: NativeSocket, target: JoinTarget): void {
  try {
    handle.ipv6Mreq(constants().IPV6_LEAVE_ANYCAST, target.address, target.interface.index);
  } catch {
    /* the fd is closed next, which drops the join in any case */
  }
}

/** The one join of a group's socket: whether the kernel holds it, and how to make or undo it. */
class Join {
  held = false;

  constructor(
    readonly handle: NativeSocket,
    readonly target: JoinTarget,
  ) {}

  /**
   * The join of a group's socket, made as the socket opens: a refused join closes the
   * socket (nothing is left open for a constructor that throws) and throws its error.
   */
  static held(handle: NativeSocket, target: JoinTarget, close: () => void): Join {
    const join = new Join(handle, target);
    try {
      join.join();
    } catch (err) {
      close();
      throw err;
    }
    return join;
  }

  /** IPV6_JOIN_ANYCAST; throws the coded error with its hint. */
  join(): void {
    join(this.handle, this.target);
    this.held = true;
  }

  /** IPV6_LEAVE_ANYCAST if held; never throws. */
  leave(): void {
    if (!this.held) return;
    this.held = false;
    leave(this.handle, this.target);
  }
}

/**
 * The socket of a serving group: a UDP socket on [::]:port holding the join, delivering
 * only datagrams whose destination is the anycast address, each with a reply function.
 *
 * Why `::` and not the anycast address itself: bind() to an anycast address fails with
 * EADDRNOTAVAIL unless IPV6_FREEBIND is set before bind(), and UdpSocket binds in its
 * constructor. `::` needs no extra privilege, and IPV6_PKTINFO tells each datagram's
 * destination, so the filter is one 16-byte comparison. The cost: the group owns the port
 * in its namespace, so a unicast service on the same port must bind its own address and
 * both must set `reuseAddr` (the kernel then prefers the more specific socket).
 */
class ServiceSocket extends UdpSocket {
  // Its 'message' info carries reply(): a listener written for a UdpSocket ignores it.
  declare readonly [eventMap]: Events<Omit<UdpSocketEvents, 'message'> & Pick<AnycastGroupEvents, 'message'>>;
  /** Datagrams to the port whose destination was not the anycast address (dropped). */
  ignored = 0;
  readonly join: Join;

  constructor(
    options: UdpSocketOptions,
    private readonly target: JoinTarget,
  ) {
    super(options);
    this.join = Join.held(this.handle, target, () => void this.close());
  }

  // dispatch() pushes only AnycastMessage items, so the iterator yields nothing else.
  override [Symbol.asyncIterator](): AsyncIterator<AnycastMessage> {
    return super[Symbol.asyncIterator]() as AsyncIterator<AnycastMessage>;
  }

  // The base constructor closes on a failed bind(), before `join` exists.
  protected override beforeClose(): void {
    (this.join as Join | undefined)?.leave();
  }

  protected override dispatch(records: RecordBatch): void {
    const wantEvents = this.listenerCount('message') > 0;
    const wantItems = this.hasIterators;
    const events: ServiceSocket = this;
    this.forEachRecord(records, (i) => {
      this.countRecord(records, i);
      // The socket is bound to `::`: datagrams to the host's unicast addresses on this
      // port arrive too, and must not be answered as if the group had been asked.
      if (!records.destinationIs(i, this.target.bytes)) {
        this.ignored++;
        return;
      }
      const payload = records.payload(i);
      const info = this.decode(records, i) as AnycastMessageInfo;
      info.reply = this.replier(records, i, info);
      // Iterators first: a listener that throws must not cost them the datagram.
      if (wantItems) {
        const item: AnycastMessage = { data: payload, info };
        this.pushToIterators(item);
      }
      if (wantEvents) events.emit('message', payload, info);
    });
  }

  /**
   * The reply function of one datagram. The peer (without zone), its scope and the arrival
   * interface are taken from the record as the kernel gave them, so a reply costs no name
   * lookups; the source is the anycast address, set per packet with IPV6_PKTINFO (accepted
   * for a joined anycast address since Linux 3.14). Normal source selection never picks an
   * anycast address, and a client that connect()ed to it would drop an answer from any other.
   */
  private replier(records: RecordBatch, i: number, info: MessageInfo): AnycastReply {
    // decode() just read this record: the cache holds its source, without zone.
    const peer = this.sourceCache.current;
    const scopeId = records.scopeId(i);
    const ifindex = records.ifindex(i);
    const ctl: SendControl = { ...NO_CONTROL, ifindex: ifindex > 0 ? ifindex : -1, source: this.target.address };
    const context: ErrorContext = { option: 'IPV6_PKTINFO', address: info.address, port: info.port, netns: this.netns };
    if (info.interface) context.interface = info.interface.name || info.interface.index;
    return (data, options) => {
      if (this.closed) return this.failedSend(closedError('anycast group'));
      let buf: Buffer;
      let control = ctl;
      try {
        buf = toBuffer(data);
        if (options !== undefined) {
          const opts = validateObject<ReplyOptions>(options, 'options');
          validateOptionKeys(opts, REPLY_KEYS, 'options');
          control = { ...ctl };
          if (opts.hopLimit !== undefined) control.hopLimit = validateInteger(opts.hopLimit, 'options.hopLimit', 0, 255);
          if (opts.trafficClass !== undefined) control.trafficClass = validateInteger(opts.trafficClass, 'options.trafficClass', 0, 255);
        }
      } catch (err) {
        return this.failedSend(err);
      }
      return this.sendNative(buf, peer, info.port, scopeId, control, context);
    };
  }
}

/**
 * The socket of a group without a port: an unbound UDP socket. It owns no port and receives
 * nothing (an unbound UDP socket is in no lookup table); it only carries the join.
 */
class MembershipSocket extends BaseSocket<never> {
  readonly join: Join;

  constructor(options: SocketOptions, target: JoinTarget) {
    super({ family: 6, type: constants().SOCK_DGRAM, protocol: 0 }, options, 'message');
    this.join = Join.held(this.handle, target, () => void this.close());
  }

  // The base constructor closes on a failed bind(), before `join` exists.
  protected override beforeClose(): void {
    (this.join as Join | undefined)?.leave();
  }

  // Nothing can arrive: do not poll the fd (an iterator then simply ends at close()).
  protected override startReceiving(): void {}

  protected override dispatch(): void {}
}

/** Checks the anycast address: IPv6 text without zone, neither multicast nor unspecified. */
function anycastAddress(value: unknown): { address: string; bytes: Buffer } {
  if (typeof value !== 'string') throw invalidArgType('address', 'of type string', value);
  let bytes: Buffer;
  try {
    bytes = parseIpv6(value);
  } catch {
    throw invalidArgValue('address', value, 'must be an IPv6 address without a zone (the interface option names the interface)');
  }
  // The kernel says EINVAL for both; saying what is wrong before the syscall is kinder.
  // Whether the host owns the address as unicast only the kernel can judge.
  if (bytes[0] === 0xff) throw invalidArgValue('address', value, 'is a multicast address; anycast addresses are unicast addresses (join multicast groups with a multicast socket)');
  if (bytes.every((b) => b === 0)) throw invalidArgValue('address', value, 'is the unspecified address');
  return { address: formatIpv6(bytes), bytes };
}

/** Resolves the required interface option; never 0 and never 'all'. */
function joinInterface(value: unknown, directory: InterfaceDirectory): InterfaceRef {
  if (value === undefined) throw invalidArgType('options.interface', 'an interface index (number) or name (string)', value);
  if (value === 0) throw invalidArgValue('options.interface', value, 'must name an interface; 0 would let the kernel pick one by route lookup');
  if (value === 'all') throw invalidArgValue('options.interface', value, "must name one interface; an anycast join is per interface ('all' is not allowed)");
  return directory.resolve(value, 'options.interface');
}

/**
 * The open groups of this process that join one address on one interface of one
 * namespace, held weakly (a group dropped without close() can still be collected). A
 * rejoin must leave all of them before any joins again: the kernel recreates the address's
 * route only when its entry is recreated, that is, when the join count went to zero.
 */
interface Holders {
  readonly groups: Set<WeakRef<AnycastGroup>>;
  /** The watcher event the last rejoin answered: every group of the key hears the same event, one rejoin serves them all. */
  lastEvent: object | undefined;
}

const holders = new Map<string, Holders>();

/**
 * An IPv6 anycast address held by this process on one interface, and optionally a UDP
 * service on it.
 *
 * - Joins with IPV6_JOIN_ANYCAST on a socket of its own; close() leaves (IPV6_LEAVE_ANYCAST)
 *   and closes that socket. A group that is garbage-collected unclosed has its fd closed by
 *   the native finalizer, which drops the join too: ip6sock never leaks one.
 * - Two AnycastGroup objects for the same address and interface each hold their own kernel
 *   join (/proc/net/anycast6 shows `users` 2), and each close() leaves only its own: the
 *   kernel counts joins per socket, and the address stays until the last one goes.
 * - With `port`, datagrams sent to the anycast address arrive as
 *   `'message' (data, info)`; `info.reply(data)` answers from the anycast address.
 * - It heals after link flaps. When its interface goes down the kernel deletes the
 *   address's route (nothing reaches the host any more) but keeps the join, and does not
 *   restore the route when the link comes back. The group emits `'down'` (`state` becomes
 *   'down'); when the link is up again, or, without keep_addr_on_down, when an address of
 *   the interface returns (a host may join only inside an on-link prefix), it leaves and
 *   joins again, which recreates the route, and emits `'up'`. If renewing fails it stays
 *   'down' and emits a 'warning'; the next link or address event tries again.
 *
 * Events: 'message' (serving groups), 'down', 'up', 'warning', 'error', 'close'.
 *
 * Needs CAP_NET_ADMIN in the socket's network namespace (EPERM otherwise).
 */
export class AnycastGroup extends TypedEmitter implements AsyncIterable<AnycastMessage> {
  /** @internal */
  declare readonly [eventMap]: Events<AnycastGroupEvents>;

  /** The interface the address is joined on. */
  readonly interface: InterfaceRef;
  /** The namespace the group lives in, as given. */
  readonly netns: string | undefined;
  /**
   * Receive counters (all zero for a group without a port), read live: the same object
   * shows new counts when read again, as a socket's stats do.
   */
  readonly stats: AnycastStats;

  /** The anycast address, in canonical text form. */
  private readonly anycast: string;
  /** The UDP port served; 0 for a group that only holds the address. */
  private readonly port: number;

  private readonly socket: ServiceSocket | MembershipSocket;
  private forwarding = false;
  private current: AnycastState;
  /** This group's entry in `holders`: namespace, interface index and address. */
  private readonly key: string;
  private readonly holderRef = new WeakRef<AnycastGroup>(this);

  /**
   * Joins `address` on `options.interface` (index or name, required).
   * @throws ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE / ERR_OUT_OF_RANGE for bad
   *   arguments; ENODEV for an unknown interface; the join's system error (EPERM,
   *   EADDRNOTAVAIL, EINVAL, ENOMEM) with `option: 'IPV6_JOIN_ANYCAST'` and a hint.
   */
  constructor(address: string, options: AnycastGroupOptions) {
    super();
    const a = anycastAddress(address);
    const opts = validateObject<AnycastGroupOptions>(options, 'options');
    validateOptionKeys(opts, ANYCAST_KEYS, 'options');
    const port = opts.port === undefined ? undefined : validatePort(opts.port, 'options.port');
    this.directory = directoryOf(opts.netns);
    this.interface = joinInterface(opts.interface, this.directory);
    this.anycast = a.address;
    this.netns = opts.netns;
    const target: JoinTarget = { address: a.address, bytes: a.bytes, interface: this.interface, netns: opts.netns };
    const events: AnycastGroup = this;
    const onError = (err: Error): void => void events.emit('error', err);
    const onClose = (): void => {
      this.removal?.cancel();
      this.unregister();
      events.emit('close');
    };

    if (port === undefined) {
      this.socket = new MembershipSocket(opts, target).on('error', onError).on('close', onClose);
      this.port = 0;
    } else {
      // Spread first, then the fixed settings: a JavaScript caller's `address` or
      // `family` cannot move the service off [::]:port, nor `receivePacketInfo` take away
      // the destination the service filters on.
      const service = new ServiceSocket({ ...opts, family: 6, address: '::', ipv6Only: true, port, receivePacketInfo: true }, target);
      this.socket = service.on('error', onError).on('close', onClose);
      this.port = service.address().port;
      // Reading starts with the first 'message' listener of the group and stops with the
      // last, as on a socket: the service reads only while it has a listener (or an iterator).
      const forward = (data: Buffer, info: AnycastMessageInfo): void => void events.emit('message', data, info);
      events.on('newListener', (event) => {
        if (event !== 'message' || this.forwarding) return;
        this.forwarding = true;
        service.on('message', forward);
      });
      events.on('removeListener', (event) => {
        if (event !== 'message' || !this.forwarding || events.listenerCount('message') > 0) return;
        this.forwarding = false;
        service.off('message', forward);
      });
    }
    this.stats = this.liveStats();
    this.key = `${netnsPath(opts.netns) ?? ''}|${this.interface.index}|${this.anycast}`;
    let entry = holders.get(this.key);
    if (entry === undefined) holders.set(this.key, (entry = { groups: new Set(), lastEvent: undefined }));
    entry.groups.add(this.holderRef);
    // The kernel drops the join when the interface is deleted, and the address's route when
    // it goes down: say so instead of going silent, and heal when the link returns.
    try {
      this.removal = this.directory.follow(this, AnycastGroup.linkFollower);
    } catch (err) {
      void this.socket.close();
      throw err;
    }
    // A join made while the link is down gets its route, which the link's coming up keeps;
    // it starts 'down' all the same (nothing arrives on a down link) and renews at 'up'.
    this.current = this.directory.known(this.interface.index)?.flags.up === false ? 'down' : 'up';
  }

  /** The interfaces of the group's namespace. */
  private readonly directory: InterfaceDirectory;
  /** Follows the group's interface: removal, down and up. */
  private readonly removal: Following | undefined;

  // Static, so that the directory does not hold the group (see InterfaceDirectory.follow).
  private static readonly linkFollower: Follower<AnycastGroup> = {
    removed: (group, iface) => AnycastGroup.onRemoved(group, iface),
    changed: (group, event) => AnycastGroup.onLink(group, event),
    address: (group, event) => AnycastGroup.onAddress(group, event),
  };

  /**
   * 'up' while the address reaches the host; 'down' from the moment its interface went down
   * until the group has renewed its join (see the 'down' and 'up' events). A closed group
   * keeps the state it had.
   */
  get state(): AnycastState {
    return this.current;
  }

  private static onRemoved(group: AnycastGroup, iface: InterfaceRef): void {
    if (iface.index !== group.interface.index || group.closed) return;
    group.removal?.cancel();
    group.emit('error', interfaceRemovedError(group.interface, group.netns, `the kernel dropped anycast ${group.anycast} with it; close this group`));
  }

  private static onLink(group: AnycastGroup, event: LinkEvent): void {
    if (event.index !== group.interface.index || group.closed) return;
    if (!event.flags.up) {
      if (group.current === 'up') group.changeState('down', 'link-down', event.name);
      return;
    }
    if (group.current === 'down') AnycastGroup.rejoinAll(group.key, event, 'link-up', event.name);
  }

  /** An address returned: a host accepts the join again once an on-link prefix holds the anycast address. */
  private static onAddress(group: AnycastGroup, event: AddressEvent): void {
    if (event.type !== 'added' || event.family !== 6 || event.index !== group.interface.index) return;
    if (group.closed || group.current === 'up') return;
    const link = group.directory.known(event.index);
    if (link === undefined || !link.flags.up) return;
    AnycastGroup.rejoinAll(group.key, event, 'address-added', link.name);
  }

  /**
   * Renews the joins of every open group of this process on one address and interface:
   * all leave, then each joins again. The kernel keeps an anycast entry (and, after a link
   * flap, its missing route) as long as any join holds it, so one group leaving and
   * joining while another still holds the address would change nothing.
   */
  private static rejoinAll(key: string, event: object, reason: AnycastStateEvent['reason'], name: string): void {
    const entry = holders.get(key);
    if (entry === undefined || entry.lastEvent === event) return;
    entry.lastEvent = event;
    const groups: AnycastGroup[] = [];
    for (const ref of entry.groups) {
      const g = ref.deref();
      if (g === undefined) entry.groups.delete(ref);
      else if (!g.closed) groups.push(g);
    }
    if (groups.length === 0) return;
    for (const g of groups) g.socket.join.leave();
    // A join outside this process (another daemon's socket) keeps the entry alive, and
    // joining again then brings back no route: detect it rather than claim to serve.
    const first = groups[0];
    let heldElsewhere = false;
    try {
      heldElsewhere = anycast6(first.netns).some((e) => e.interface.index === first.interface.index && e.address === first.anycast);
    } catch {
      /* unreadable: renew anyway, which is right whenever no one else holds the address */
    }
    const failures = groups.map((g): Error | undefined => {
      try {
        g.socket.join.join();
        return undefined;
      } catch (err) {
        return err as Error;
      }
    });
    groups.forEach((g, i) => {
      if (g.closed) return;
      let failure = failures[i];
      if (failure === undefined && heldElsewhere) {
        failure = stateError(
          'ERR_ANYCAST_HELD_ELSEWHERE',
          `anycast ${g.anycast} on ${interfaceLabel({ index: g.interface.index, name })} came back without its route: a socket outside this process still holds a join of it, so the kernel kept the entry whose route the link's going down deleted; it returns once that join is renewed or left`,
        );
      }
      if (failure === undefined) {
        if (g.current === 'down') g.changeState('up', reason, name);
        return;
      }
      // Waiting for an address is the normal course of a flap without keep_addr_on_down:
      // the address event that ends it renews the join. Anything else is worth a warning.
      if ((failure as { code?: unknown }).code !== 'EADDRNOTAVAIL') warn(g, withContext(failure, { netns: g.netns }) as Error);
      if (g.current === 'up') g.changeState('down', 'rejoin-failed', name);
    });
  }

  private changeState(state: AnycastState, reason: AnycastStateEvent['reason'], name: string): void {
    this.current = state;
    const event: AnycastStateEvent = { state, interface: { index: this.interface.index, name: name || this.interface.name }, reason };
    (this as AnycastGroup).emit(state, event);
  }

  private unregister(): void {
    const entry = holders.get(this.key);
    if (entry === undefined) return;
    entry.groups.delete(this.holderRef);
    if (entry.groups.size === 0) holders.delete(this.key);
  }

  /** The anycast addresses joined in a namespace, by any socket or (on routers) by the kernel. */
  static list(options?: { netns?: string }): AnycastEntry[] {
    const opts = validateOptionalObject<{ netns?: string }>(options, 'options');
    validateOptionKeys(opts, LIST_KEYS, 'options');
    return anycast6(opts.netns);
  }

  /** True once close() was called (or the AbortSignal fired). */
  get closed(): boolean {
    return this.socket.closed;
  }

  /**
   * The anycast address, the port served (0 for a group that only holds the address) and
   * family 6. Works after close() too: the group's address does not change.
   */
  address(): { address: string; port: number; family: 6 } {
    return { address: this.anycast, port: this.port, family: 6 };
  }

  /**
   * Sets the hop limit of every datagram the group sends (its replies), 0-255: the
   * `hopLimit` option. A group without a port sends nothing (ERR_INVALID_STATE).
   */
  setHopLimit(hopLimit: number): void {
    this.service('setHopLimit').setHopLimit(hopLimit);
  }

  /** The hop limit of the group's replies as the kernel has it. */
  getHopLimit(): number {
    return this.service('getHopLimit').getHopLimit();
  }

  /**
   * Sets (or with null clears) hop-by-hop options sent with every reply: the `hopByHop`
   * option. Needs CAP_NET_RAW. A group without a port sends nothing (ERR_INVALID_STATE).
   */
  setHopByHop(options: HopByHopOption[] | Buffer | null): void {
    this.service('setHopByHop').setHopByHop(options);
  }

  /** The serving socket, for the settings only a group with a port has. */
  private service(method: string): ServiceSocket {
    if (this.closed) throw closedError('anycast group');
    if (this.socket instanceof ServiceSocket) return this.socket;
    throw stateError('ERR_INVALID_STATE', `Invalid state: ${method}() applies to a group with a port; this group only holds ${this.anycast} and sends nothing`);
  }

  /** The counters object: getters over the socket's, so that it stays live. */
  private liveStats(): AnycastStats {
    const socket = this.socket;
    const ignored = (): number => (socket instanceof ServiceSocket ? socket.ignored : 0);
    const stats = {} as AnycastStats;
    const field = (get: () => number): PropertyDescriptor => ({ enumerable: true, get });
    Object.defineProperties(stats, {
      received: field(() => socket.stats.received - ignored()),
      ignored: field(ignored),
      kernelDrops: field(() => socket.stats.kernelDrops),
      truncated: field(() => socket.stats.truncated),
      // console.log shows the numbers, not [Getter].
      [inspect.custom]: { value: (): object => ({ ...stats }) },
    });
    return stats;
  }

  /**
   * Leaves the group and closes its socket: IPV6_LEAVE_ANYCAST, then the fd closes, then
   * 'close' is emitted and the promise resolves. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    return this.socket.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Yields `{ data, info }` (with `info.reply`) for every datagram addressed to the group, until it closes. */
  [Symbol.asyncIterator](): AsyncIterator<AnycastMessage> {
    return this.socket[Symbol.asyncIterator]();
  }

  /** Keep the event loop alive while the group is open (the default). */
  ref(): this {
    this.socket.ref();
    return this;
  }

  /** Let the process exit even while the group is open. */
  unref(): this {
    this.socket.unref();
    return this;
  }
}
