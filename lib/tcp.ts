/**
 * TCP inside a network namespace or bound to a device, as Node's own net objects. Node
 * cannot create a socket in another namespace; ip6sock creates it there and hands the fd
 * to net.Server / net.Socket, which own it from then on. GRASP needs this: M_RESPONSE
 * and negotiation run over TCP in the same namespace (or VRF) as the multicast socket.
 *
 * One limit comes from Node itself: for a LINK-LOCAL connection in another namespace,
 * net's remoteAddress/localAddress getters throw ENXIO (Node turns the scope id into an
 * interface name in its own namespace, where that index does not exist). Data flows
 * normally; take the peer's address from what you connected to or from the UDP exchange.
 * @packageDocumentation
 */
import * as net from 'node:net';
import { attempt, ErrorContext, invalidArgType, invalidArgValue } from './errors';
import { resolve as resolveInterface } from './interfaces';
import { constants, native, NativeSocket } from './native';
import {
  Family,
  netnsPath,
  validateAddress,
  validateBoolean,
  validateFamily,
  validateInteger,
  validateInterfaceName,
  validateObject,
  validateOptionalObject,
  validatePort,
  validateString,
} from './validate';

/** Where the socket lives. */
export interface TcpPlacement {
  /** 6 (default) or 4. */
  family?: Family;
  /** Network namespace (a name under /run/netns, or a path). */
  netns?: string;
  /** Bind to this device (SO_BINDTODEVICE). */
  device?: string;
}

export interface TcpServerOptions extends TcpPlacement {
  /** Port to listen on; 0 (default) lets the kernel pick. */
  port?: number;
  /** Local address; default '::' or '0.0.0.0'. */
  address?: string;
  /** listen() backlog. Default 511, as Node. */
  backlog?: number;
  /** SO_REUSEADDR, on by default as in Node. */
  reuseAddr?: boolean;
  /** IPV6_V6ONLY (default true). */
  ipv6Only?: boolean;
}

export interface TcpConnectOptions extends TcpPlacement {
  address: string;
  port: number;
  /** Local address to connect from. */
  localAddress?: string;
  /** Local port to connect from (GRASP answers from its listening port). */
  localPort?: number;
  /** SO_REUSEADDR on the connecting socket (needed to reuse a listening port as source). */
  reuseAddr?: boolean;
}

function openStream(opts: Partial<TcpPlacement>, context: ErrorContext): { sock: NativeSocket; family: Family } {
  const family = opts.family === undefined ? 6 : validateFamily(opts.family, 'options.family');
  const ns = netnsPath(opts.netns, 'options.netns');
  const device = opts.device === undefined ? null : validateInterfaceName(validateString(opts.device, 'options.device'), 'options.device');
  const sock = attempt(context, () => new (native().Socket)(family, constants().SOCK_STREAM, 0, ns, device));
  return { sock, family };
}

function scopeOf(parts: { zone?: string }, netns: string | undefined): number {
  if (parts.zone === undefined) return 0;
  const zone = /^\d+$/.test(parts.zone) ? Number(parts.zone) : parts.zone;
  return resolveInterface(zone, 'address zone', netns).index;
}

/**
 * Creates a listening net.Server in the namespace. Resolves once it listens; connections
 * are ordinary net.Socket objects.
 */
export async function createTcpServer(options: TcpServerOptions = {}, connectionListener?: (socket: net.Socket) => void): Promise<net.Server> {
  const opts = validateOptionalObject<TcpServerOptions>(options, 'options');
  // Checked before the socket exists: net.createServer() throws for a wrong one only after
  // the fd has been handed over, which would leak it.
  if (connectionListener !== undefined && typeof connectionListener !== 'function') {
    throw invalidArgType('connectionListener', 'a function', connectionListener);
  }
  const context: ErrorContext = { netns: opts.netns };
  const port = opts.port === undefined ? 0 : validatePort(opts.port, 'options.port');
  const backlog = opts.backlog === undefined ? 511 : validateInteger(opts.backlog, 'options.backlog', 1, 65535);
  const reuse = opts.reuseAddr === undefined ? true : validateBoolean(opts.reuseAddr, 'options.reuseAddr');
  const { sock, family } = openStream(opts, context);
  let fd: number;
  try {
    const c = constants();
    const local = validateAddress(opts.address === undefined ? (family === 6 ? '::' : '0.0.0.0') : opts.address, 'options.address', family);
    if (reuse) attempt({ ...context, option: 'SO_REUSEADDR' }, () => sock.setInt(c.SOL_SOCKET, c.SO_REUSEADDR, 1));
    if (family === 6) {
      const v6only = opts.ipv6Only === undefined ? true : validateBoolean(opts.ipv6Only, 'options.ipv6Only');
      attempt({ ...context, option: 'IPV6_V6ONLY' }, () => sock.setInt(c.IPPROTO_IPV6, c.IPV6_V6ONLY, v6only ? 1 : 0));
    }
    const scopeId = scopeOf(local, opts.netns);
    attempt({ ...context, address: local.address, port }, () => sock.bind(local.address, port, scopeId));
    attempt(context, () => sock.listen(backlog));
    fd = sock.detach();
  } catch (err) {
    sock.close();
    throw err;
  }
  const server = net.createServer(connectionListener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/**
 * Starts a TCP connection from inside the namespace and returns the net.Socket at once
 * ('connect' and 'error' events as usual).
 */
export function connectTcp(options: TcpConnectOptions): net.Socket {
  const opts = validateObject<TcpConnectOptions>(options, 'options');
  const context: ErrorContext = { netns: opts.netns };
  const family = opts.family === undefined ? (typeof opts.address === 'string' && net.isIPv4(opts.address) ? 4 : 6) : validateFamily(opts.family, 'options.family');
  const dest = validateAddress(opts.address, 'options.address', family);
  const port = validateInteger(opts.port, 'options.port', 1, 65535);
  let device = opts.device;
  if (dest.zone !== undefined) {
    // Node resolves a zone with if_nametoindex in the caller's namespace, which is the
    // wrong one here. Binding the socket to the zone's device instead lets the kernel
    // route the link-local destination with no scope id at all.
    const zone = resolveInterface(/^\d+$/.test(dest.zone) ? Number(dest.zone) : dest.zone, 'address zone', opts.netns);
    if (device !== undefined && device !== zone.name) {
      throw invalidArgValue('options.device', device, `conflicts with the address zone ${zone.name}`);
    }
    device = zone.name;
  }
  const { sock } = openStream({ ...opts, family, device }, context);
  let fd: number;
  try {
    const c = constants();
    if (opts.reuseAddr !== undefined && validateBoolean(opts.reuseAddr, 'options.reuseAddr')) {
      attempt({ ...context, option: 'SO_REUSEADDR' }, () => sock.setInt(c.SOL_SOCKET, c.SO_REUSEADDR, 1));
    }
    if (opts.localAddress !== undefined || opts.localPort !== undefined) {
      const local = validateAddress(opts.localAddress === undefined ? (family === 6 ? '::' : '0.0.0.0') : opts.localAddress, 'options.localAddress', family);
      const localPort = opts.localPort === undefined ? 0 : validatePort(opts.localPort, 'options.localPort');
      attempt({ ...context, address: local.address, port: localPort }, () => sock.bind(local.address, localPort, scopeOf(local, opts.netns)));
    }
    fd = sock.detach();
  } catch (err) {
    sock.close();
    throw err;
  }
  const socket = new net.Socket({ fd });
  socket.connect({ host: dest.address, port });
  return socket;
}
