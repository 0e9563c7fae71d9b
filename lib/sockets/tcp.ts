/**
 * TCP inside a network namespace or bound to a device, as Node's own net objects. Node
 * cannot create a socket in another namespace; ip6sock creates it there and hands the fd
 * to net.Server / net.Socket, which own it from then on. GRASP needs this: M_RESPONSE
 * and negotiation run over TCP in the same namespace (or VRF) as the multicast socket.
 *
 * Both helpers return a promise that settles when the socket is ready: createTcpServer()
 * once the server listens, connectTcp() once the connection is established. Either rejects
 * with what went wrong: a wrong argument (checked before any system call) or what the kernel
 * refused (no such namespace or interface, a taken port, a refused connection).
 *
 * Two things are not left to Node, because Node does them in its own namespace:
 * - connectTcp() makes the connect() itself, with the destination's scope id looked up in
 *   the socket's namespace. Node would look a zone up where it runs, and with libuv 1.47
 *   or later (Node 22 and later) it gives a link-local address without a zone the scope id
 *   of the first link-local interface it finds there, which the kernel refuses (EINVAL)
 *   for a socket bound elsewhere. The connecting descriptor goes to a net.Socket at once,
 *   and the promise resolves with it when the kernel reports the connection.
 * - remoteAddress, remotePort, remoteFamily, localAddress, localPort, localFamily and
 *   address() of these sockets (connectTcp's and a server's accepted connections) are read
 *   from the kernel, with a link-local zone named as the interface of the socket's own
 *   namespace ('fe80::2%eth0'). Node would name the scope id in its own namespace: the
 *   wrong interface, or ENXIO. Their `family` fields stay Node's strings ('IPv6', 'IPv4'):
 *   these are Node's objects, typed by Node's declarations, and code written for net
 *   compares them with those strings.
 * @packageDocumentation
 */
import * as net from 'node:net';
import { abortError, attempt, closedError, ErrorContext, invalidArgType, invalidArgValue, withContext } from '../errors';
import { directoryOf } from '../links/directory';
import { constants, native, NativeSockAddr, NativeSocket } from '../core/native';
import {
  Family,
  netnsPath,
  parseZone,
  validateAddress,
  validateBoolean,
  validateFamily,
  validateInteger,
  validateInterfaceName,
  validateObject,
  validateOptionalObject,
  validateOptionKeys,
  validatePort,
  validateSignal,
  validateString,
  optionKeys,
  type OptionKeyList,
} from '../validate';

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
  /**
   * SO_REUSEPORT (default false). Set it here and on connectTcp() to connect from the port
   * this server listens on: Linux lets the two share the port only when both have it.
   */
  reusePort?: boolean;
  /** IPV6_V6ONLY (default true). */
  ipv6Only?: boolean;
}

export interface TcpConnectOptions extends TcpPlacement {
  /** Destination; a link-local IPv6 address takes its zone ('fe80::2%eth0') in the socket's namespace. */
  address: string;
  port: number;
  /** Local address to connect from. */
  localAddress?: string;
  /** Local port to connect from (GRASP answers from its listening port: see reusePort). */
  localPort?: number;
  /** SO_REUSEADDR on the connecting socket (a port in TIME_WAIT). */
  reuseAddr?: boolean;
  /**
   * SO_REUSEPORT on the connecting socket (default false): with it on here and on the server
   * (createTcpServer's reusePort), localPort may be the port that server listens on.
   */
  reusePort?: boolean;
  /**
   * Aborting destroys the socket, as net.connect()'s `signal` does: while connecting, the
   * promise rejects with an AbortError (code ABORT_ERR).
   */
  signal?: AbortSignal;
}

const PLACEMENT_KEYS: OptionKeyList<TcpPlacement> = { family: true, netns: true, device: true };
const SERVER_KEYS = optionKeys<TcpServerOptions>({ ...PLACEMENT_KEYS, port: true, address: true, backlog: true, reuseAddr: true, reusePort: true, ipv6Only: true });
const CONNECT_KEYS = optionKeys<TcpConnectOptions>({
  ...PLACEMENT_KEYS,
  address: true,
  port: true,
  localAddress: true,
  localPort: true,
  reuseAddr: true,
  reusePort: true,
  signal: true,
});

function openStream(opts: Partial<TcpPlacement>, context: ErrorContext): { sock: NativeSocket; family: Family } {
  const family = opts.family === undefined ? 6 : validateFamily(opts.family, 'options.family');
  const ns = netnsPath(opts.netns, 'options.netns');
  const device = opts.device === undefined ? null : validateInterfaceName(validateString(opts.device, 'options.device'), 'options.device');
  const sock = attempt(context, () => new (native().Socket)(family, constants().SOCK_STREAM, 0, ns, device));
  return { sock, family };
}

/** A zone as given ('eth0' or '3'), checked before any lookup: a name, or an index as a number. */
function zoneSpec(zone: string | undefined, name: string): string | number | undefined {
  return zone === undefined ? undefined : parseZone(zone, `${name} zone`);
}

/** The scope id of a zone, looked up in the namespace (ENODEV when there is no such interface). */
function scopeIdOf(zone: string | number | undefined, netns: string | undefined): number {
  return zone === undefined ? 0 : directoryOf(netns).resolve(zone, 'address zone').index;
}

// ---------------------------------------------------------------------------------------
// Addresses as the socket's own namespace names them

/** What net.Socket's address getters read: the shape of Node's own. */
interface Endpoint {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** The descriptor behind a net.Socket or net.Server (a TCP handle has `fd` on Linux). */
function handleFd(owner: net.Socket | net.Server): number | undefined {
  const fd = (owner as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** getsockname / getpeername of the socket behind `owner`; undefined when there is none (yet). */
function endpointOf(owner: net.Socket | net.Server, peer: boolean): Endpoint | undefined {
  const fd = handleFd(owner);
  if (fd === undefined) return undefined;
  let a: NativeSockAddr & { interface: string };
  try {
    a = native().socketAddress(fd, peer);
  } catch {
    return undefined; // not connected (any more): Node's getters give undefined then too
  }
  if (a.family === 0) return undefined;
  // A zone only where the kernel gives a scope id (link-local), named in the socket's own
  // namespace; by number if that interface is gone.
  const address = a.family === 6 && a.scopeId !== 0 ? `${a.address}%${a.interface || a.scopeId}` : a.address;
  return { address, family: a.family === 6 ? 'IPv6' : 'IPv4', port: a.port };
}

/**
 * Makes the address getters of `socket` read the kernel (see the module comment). Cached as
 * Node caches them: the peer once connected, the local end once known outside a connect.
 */
function useKernelAddresses(socket: net.Socket): void {
  let peer: Endpoint | undefined;
  let local: Endpoint | undefined;
  const remote = (): Partial<Endpoint> => {
    if (peer === undefined && !socket.connecting) peer = endpointOf(socket, true);
    return peer ?? {};
  };
  const own = (): Partial<Endpoint> => {
    if (local !== undefined) return local;
    const now = endpointOf(socket, false);
    if (!socket.connecting) local = now;
    return now ?? {};
  };
  const getter = (get: () => unknown): PropertyDescriptor => ({ configurable: true, enumerable: false, get });
  Object.defineProperties(socket, {
    remoteAddress: getter(() => remote().address),
    remotePort: getter(() => remote().port),
    remoteFamily: getter(() => remote().family),
    localAddress: getter(() => own().address),
    localPort: getter(() => own().port),
    localFamily: getter(() => own().family),
    address: { configurable: true, enumerable: false, writable: true, value: () => own() },
  });
}

/** server.address() read the same way, for a server listening on a link-local address. */
function useKernelServerAddress(server: net.Server): void {
  const nodeAddress = server.address.bind(server);
  Object.defineProperty(server, 'address', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: (): ReturnType<net.Server['address']> => {
      const a = server.listening ? endpointOf(server, false) : undefined;
      return a ?? nodeAddress();
    },
  });
}

// ---------------------------------------------------------------------------------------
// Server

/**
 * Creates a listening net.Server in the namespace. Resolves once it listens; connections
 * are ordinary net.Socket objects (their addresses named in the namespace, see above).
 */
export async function createTcpServer(options: TcpServerOptions = {}, connectionListener?: (socket: net.Socket) => void): Promise<net.Server> {
  const opts = validateOptionalObject<TcpServerOptions>(options, 'options');
  validateOptionKeys(opts, SERVER_KEYS, 'options');
  // Checked before the socket exists: net.createServer() throws for a wrong one only after
  // the fd has been handed over, which would leak it.
  if (connectionListener !== undefined && typeof connectionListener !== 'function') {
    throw invalidArgType('connectionListener', 'a function', connectionListener);
  }
  const context: ErrorContext = { netns: opts.netns };
  const port = opts.port === undefined ? 0 : validatePort(opts.port, 'options.port');
  const backlog = opts.backlog === undefined ? 511 : validateInteger(opts.backlog, 'options.backlog', 1, 65535);
  const reuse = opts.reuseAddr === undefined ? true : validateBoolean(opts.reuseAddr, 'options.reuseAddr');
  const reusePort = opts.reusePort === undefined ? false : validateBoolean(opts.reusePort, 'options.reusePort');
  const { sock, family } = openStream(opts, context);
  let fd: number;
  try {
    const c = constants();
    const local = validateAddress(opts.address === undefined ? (family === 6 ? '::' : '0.0.0.0') : opts.address, 'options.address', family);
    if (reuse) attempt({ ...context, option: 'SO_REUSEADDR' }, () => sock.setInt(c.SOL_SOCKET, c.SO_REUSEADDR, 1));
    if (reusePort) attempt({ ...context, option: 'SO_REUSEPORT' }, () => sock.setInt(c.SOL_SOCKET, c.SO_REUSEPORT, 1));
    if (family === 6) {
      const v6only = opts.ipv6Only === undefined ? true : validateBoolean(opts.ipv6Only, 'options.ipv6Only');
      attempt({ ...context, option: 'IPV6_V6ONLY' }, () => sock.setInt(c.IPPROTO_IPV6, c.IPV6_V6ONLY, v6only ? 1 : 0));
    }
    const scopeId = scopeIdOf(zoneSpec(local.zone, 'options.address'), opts.netns);
    attempt({ ...context, address: local.address, port }, () => sock.bind(local.address, port, scopeId));
    attempt(context, () => sock.listen(backlog));
    fd = sock.detach();
  } catch (err) {
    sock.close();
    throw err;
  }
  const server = net.createServer(connectionListener);
  // Before any listener of the caller's: they see the right addresses from the start.
  server.prependListener('connection', useKernelAddresses);
  useKernelServerAddress(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

// ---------------------------------------------------------------------------------------
// Client

const REUSE_PORT_HINT = 'another socket has this port (a server listening on it?): set reusePort: true on both that server and this connection';

/** The arguments of connectTcp(), all checked: nothing here has made a system call. */
interface ConnectPlan {
  context: ErrorContext;
  family: Family;
  netns: string | undefined;
  device: string | undefined;
  address: string;
  zone: string | number | undefined;
  port: number;
  local?: { address: string; zone: string | number | undefined; port: number };
  reuseAddr: boolean;
  reusePort: boolean;
  signal: AbortSignal | undefined;
}

function planConnect(options: TcpConnectOptions): ConnectPlan {
  const opts = validateObject<TcpConnectOptions>(options, 'options');
  validateOptionKeys(opts, CONNECT_KEYS, 'options');
  const family = opts.family === undefined ? (typeof opts.address === 'string' && net.isIPv4(opts.address) ? 4 : 6) : validateFamily(opts.family, 'options.family');
  const dest = validateAddress(opts.address, 'options.address', family);
  const port = validateInteger(opts.port, 'options.port', 1, 65535);
  netnsPath(opts.netns, 'options.netns');
  const device = opts.device === undefined ? undefined : validateInterfaceName(validateString(opts.device, 'options.device'), 'options.device');
  const zone = zoneSpec(dest.zone, 'options.address');
  if (device !== undefined && typeof zone === 'string' && zone !== device) {
    throw invalidArgValue('options.device', device, `conflicts with the address zone ${zone}`);
  }
  const reuseAddr = opts.reuseAddr === undefined ? false : validateBoolean(opts.reuseAddr, 'options.reuseAddr');
  const reusePort = opts.reusePort === undefined ? false : validateBoolean(opts.reusePort, 'options.reusePort');
  let local: ConnectPlan['local'];
  if (opts.localAddress !== undefined || opts.localPort !== undefined) {
    const parts = validateAddress(opts.localAddress === undefined ? (family === 6 ? '::' : '0.0.0.0') : opts.localAddress, 'options.localAddress', family);
    local = {
      address: parts.address,
      zone: zoneSpec(parts.zone, 'options.localAddress'),
      port: opts.localPort === undefined ? 0 : validatePort(opts.localPort, 'options.localPort'),
    };
  }
  const signal = validateSignal(opts.signal, 'options.signal');
  return { context: { netns: opts.netns }, family, netns: opts.netns, device, address: dest.address, zone, port, local, reuseAddr, reusePort, signal };
}

/**
 * Creates the socket in the namespace, binds it if asked and starts connect(). Returns it
 * with whether it is connected already; throws the first system error, socket closed.
 */
function startConnect(plan: ConnectPlan): { sock: NativeSocket; connected: boolean } {
  const { context } = plan;
  const scopeId = scopeIdOf(plan.zone, plan.netns);
  const localScopeId = plan.local ? scopeIdOf(plan.local.zone, plan.netns) : 0;
  const { sock } = openStream({ family: plan.family, netns: plan.netns, device: plan.device }, context);
  try {
    const c = constants();
    if (plan.reuseAddr) attempt({ ...context, option: 'SO_REUSEADDR' }, () => sock.setInt(c.SOL_SOCKET, c.SO_REUSEADDR, 1));
    if (plan.reusePort) attempt({ ...context, option: 'SO_REUSEPORT' }, () => sock.setInt(c.SOL_SOCKET, c.SO_REUSEPORT, 1));
    const local = plan.local;
    if (local) {
      const hints = local.port !== 0 && !plan.reusePort ? { EADDRINUSE: REUSE_PORT_HINT } : undefined;
      attempt({ ...context, address: local.address, port: local.port, hints }, () => sock.bind(local.address, local.port, localScopeId));
    }
    const hints = plan.device !== undefined && plan.zone !== undefined ? { EINVAL: `the address zone is not options.device (${plan.device})` } : undefined;
    const connected = attempt({ ...context, address: plan.address, port: plan.port, hints }, () => sock.connect(plan.address, plan.port, scopeId));
    return { sock, connected };
  } catch (err) {
    sock.close();
    throw err;
  }
}

/** net.Socket types `connecting` read-only; net itself sets it around a connect, as we do here. */
function setConnecting(socket: net.Socket, value: boolean): void {
  (socket as { connecting: boolean }).connecting = value;
}

/**
 * Opens a TCP connection from inside the namespace. Resolves with the connected net.Socket
 * (its 'connect' has been emitted; data may be written at once); rejects with a wrong
 * argument, or with what the kernel refused (the namespace, an interface, the local port,
 * the connection itself), or with an AbortError when `signal` aborts first. Never throws.
 */
export function connectTcp(options: TcpConnectOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const plan = planConnect(options);
    if (plan.signal?.aborted) throw abortError(plan.signal.reason);
    const socket = startTcp(plan);
    const signal = plan.signal;
    const onAbort = (): void => void socket.destroy(abortError(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      // Settled already unless the socket closed before connecting without an error.
      reject(closedError('connection'));
    });
    // Only while connecting: afterwards 'error' is the caller's to listen to, as on any net.Socket.
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** A socket that never got a descriptor: it reports `err` as net reports a failed connect. */
function failedSocket(err: unknown): net.Socket {
  const socket = new net.Socket();
  setConnecting(socket, true);
  process.nextTick(() => socket.destroy(err as Error));
  return socket;
}

/**
 * Starts the connection and returns its net.Socket at once: 'connect' when connected,
 * 'error' for what the kernel refused.
 */
function startTcp(plan: ConnectPlan): net.Socket {
  let started: { sock: NativeSocket; connected: boolean };
  let fd: number;
  try {
    started = startConnect(plan);
  } catch (err) {
    return failedSocket(err);
  }
  const { sock } = started;
  try {
    // Node gets its own descriptor of the connecting socket; this one watches the connect.
    fd = attempt(plan.context, () => sock.duplicate());
  } catch (err) {
    sock.close();
    return failedSocket(err);
  }
  // readable/writable as the docs of an fd socket ask; manualStart: no read until 'connect'
  // (net.Socket's own _read waits while `connecting`, writes queue as in net.connect()).
  const socket = new net.Socket({ fd, readable: true, writable: true, manualStart: true } as net.SocketConstructorOpts);
  setConnecting(socket, true);
  useKernelAddresses(socket);
  const finish = (err?: Error): void => {
    sock.close(); // Node's descriptor is the socket from now on
    if (socket.destroyed) return;
    if (err !== undefined) {
      socket.destroy(withContext(err, { ...plan.context, address: plan.address, port: plan.port }) as Error);
      return;
    }
    // What net does when its own connect completes.
    setConnecting(socket, false);
    socket.emit('connect');
    socket.emit('ready');
    if (!socket.isPaused()) socket.read(0);
  };
  // Destroyed while connecting: the watch and this descriptor go too, which ends the attempt.
  socket.once('close', () => sock.close());
  if (started.connected) {
    process.nextTick(finish);
  } else {
    sock.onconnect = finish;
    try {
      attempt(plan.context, () => sock.watchConnect());
    } catch (err) {
      process.nextTick(finish, err as Error);
    }
  }
  return socket;
}
