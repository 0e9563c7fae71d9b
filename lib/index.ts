/**
 * ip6sock: the IPv6 socket features Node's dgram and net lack. Anycast groups,
 * router-alert taps, multicast by interface index with the arrival interface of every
 * packet, raw AF_INET6 sockets and hop-by-hop options, in any network namespace.
 * @packageDocumentation
 */
export { UdpSocket } from './udp';
export type { Message, MessageInfo, SendOptions, UdpSocketOptions } from './udp';
export type { SocketOptions, SocketStats } from './socket';
export type { CodedError, ErrorContext, SystemError } from './errors';
export type { Family } from './validate';
export * as interfaces from './interfaces';
export type { InterfaceRef, InterfaceSpec, NetworkInterface, InterfaceAddress, InterfaceFlags } from './interfaces';
export * as hopByHop from './hopbyhop';
export type { HopByHopOption } from './hopbyhop';
export { connectTcp, createTcpServer } from './tcp';
export type { TcpConnectOptions, TcpServerOptions } from './tcp';
