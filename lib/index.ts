/**
 * ip6sock: the IPv6 socket features Node's dgram and net lack. Anycast groups,
 * router-alert taps, multicast by interface index with the arrival interface of every
 * packet, raw AF_INET6 sockets and hop-by-hop options, in any network namespace.
 * @packageDocumentation
 * @module ip6sock
 */
// The declarations use Node's types (Buffer, node:events, node:net) and Symbol.asyncDispose:
// load them for every consumer, also one whose `types` does not list node (TypeScript 6 and
// later list nothing by default) or whose `lib` predates esnext.disposable.
/// <reference types="node" preserve="true" />
/// <reference lib="esnext.disposable" preserve="true" />
export { UdpSocket } from './sockets/udp';
export type { Message, MessageBatch, MessageInfo, SendOptions, UdpSocketOptions, UdpSocketEvents } from './sockets/udp';
export { MulticastSocket } from './sockets/multicast';
export type { MulticastSocketOptions, MulticastSocketEvents, JoinOptions, BlockOptions, Membership, MulticastSocketStats, MembershipEvent, MembershipChangeReason } from './sockets/multicast';
export type { InterfaceWatcher, InterfaceWatcherEvents, WatchOptions, LinkChange, LinkEvent, AddressEvent, InterfaceEvent, WatchedLink, WatchedAddress } from './links/watcher';
export { AnycastGroup } from './sockets/anycast';
export type { AnycastGroupOptions, AnycastGroupEvents, AnycastMessage, AnycastMessageInfo, AnycastReply, ReplyOptions, AnycastEntry, AnycastStats, AnycastState, AnycastStateEvent } from './sockets/anycast';
export type { AddressTableEntry } from './links/procnet';
export { RouterAlertSocket } from './sockets/routeralert/socket';
export type { RouterAlertSocketOptions, RouterAlertSocketEvents, RouterAlertPacket, RouterAlertPacketOf, Ipv4RouterAlertPacket, RouterAlertStats, ForwardOptions, ForwardResult, TappedError } from './sockets/routeralert/socket';
export type { Ipv4Header } from './codec/ipv4';
export { RawSocket, icmpv6Types } from './sockets/raw';
export type { RawSocketOptions, RawSocketEvents, RawSendOptions, RawGroupOptions, IcmpFilter, Icmpv6TypeName, Icmpv6TypeSpec } from './sockets/raw';
export { connectTcp, createTcpServer } from './sockets/tcp';
export type { TcpConnectOptions, TcpServerOptions } from './sockets/tcp';
export type { SocketOptions, SocketStats, SocketEvents } from './sockets/socket';
export type { DatagramSocketEvents } from './sockets/datagram';
export type { EmitterEvents, EventArgs, EventName, Listener } from './core/events';
export type { Capability, CodedError, ErrorContext, SystemError } from './errors';
export type { Family } from './validate';
export * as interfaces from './links/interfaces';
export type { InterfaceRef, InterfaceSpec, NetworkInterface, InterfaceAddress, InterfaceFlags, NamespaceOptions, SourceForOptions } from './links/interfaces';
export * as system from './system';
export * as hopByHop from './codec/hopbyhop';
export type { HopByHopOption, DecodeOptions as HopByHopDecodeOptions, EncodeOptions as HopByHopEncodeOptions } from './codec/hopbyhop';
export * as packet from './codec/packet';
export type { Ipv6Packet, Ipv6Header, UdpDatagram, Icmpv6Message, ParseOptions, SerializeOptions } from './codec/packet';
export * as mld from './codec/mld';
export type { MldMessage, MldMessageInput, GroupRecord, GroupRecordInput, RecordTypeName } from './codec/mld';
export * as igmp from './codec/igmp';
export type { IgmpMessage, IgmpMessageInput } from './codec/igmp';
export { formatIpv6, parseIpv6 } from './codec/ipv6addr';
