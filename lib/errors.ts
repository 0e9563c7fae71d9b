/**
 * Node-style errors. Every error ip6sock throws or emits has a string `code`:
 * argument errors use Node's own codes (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE,
 * ERR_OUT_OF_RANGE), failed system calls use the errno name ('EPERM') with `errno`,
 * `syscall` and whatever context names the object involved.
 */
import type { EventEmitter } from 'node:events';
import * as os from 'node:os';
import { getSystemErrorMap } from 'node:util';
import type { InterfaceRef } from './links/types';

/** Context attached to a failed system call so the message says what was being done. */
export interface ErrorContext {
  /** Socket option name, e.g. 'IPV6_JOIN_ANYCAST'. */
  option?: string;
  address?: string;
  port?: number;
  /** Interface as the caller gave it or as resolved ('eth0', 3, 'eth0 (3)'). */
  interface?: string | number;
  netns?: string;
  /** A one-line explanation of what this errno means in this situation. */
  hint?: string;
  /** Such explanations by errno code, for a context made before the call fails (a send). */
  hints?: Readonly<Partial<Record<string, string>>>;
}

/** Capabilities the kernel checks for what ip6sock does. */
export type Capability = 'CAP_NET_RAW' | 'CAP_NET_ADMIN' | 'CAP_SYS_ADMIN';

/** A failed system call, shaped like Node's own (`code`, `errno`, `syscall`) plus context. */
export interface SystemError extends Error, ErrorContext {
  code: string;
  errno: number;
  syscall: string;
  /** The capability that would have allowed the call, for EPERM / EACCES. */
  capability?: Capability;
}

/** An argument or state error raised before any system call. */
export interface CodedError extends Error {
  code: string;
}

function coded<E extends Error>(err: E, code: string): E & { code: string } {
  return Object.assign(err, { code });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor;
    return ctor && ctor.name ? `an instance of ${ctor.name}` : 'an object';
  }
  let shown = String(value);
  if (shown.length > 40) shown = `${shown.slice(0, 40)}...`;
  if (typeof value === 'string') shown = `'${shown}'`;
  return `type ${typeof value} (${shown})`;
}

export function invalidArgType(name: string, expected: string, actual: unknown): CodedError {
  return coded(new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(actual)}`), 'ERR_INVALID_ARG_TYPE');
}

export function invalidArgValue(name: string, value: unknown, reason: string): CodedError {
  return coded(new TypeError(`The argument '${name}' ${reason}. Received ${describe(value)}`), 'ERR_INVALID_ARG_VALUE');
}

export function outOfRange(name: string, range: string, value: unknown): CodedError {
  return coded(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${describe(value)}`), 'ERR_OUT_OF_RANGE');
}

/** Use of a socket (or group) after close(). */
export function closedError(what: string): CodedError {
  return coded(new Error(`${what} is closed`), 'ERR_SOCKET_CLOSED');
}

/** A state error with its own code (duplicate membership, not joined, ...). */
export function stateError(code: string, message: string): CodedError {
  return coded(new Error(message), code);
}

/** The capability the kernel checks for each privileged operation we perform. */
const CAPABILITY_BY_OPTION: Record<string, Capability> = {
  socket: 'CAP_NET_RAW',
  IPV6_JOIN_ANYCAST: 'CAP_NET_ADMIN',
  IPV6_HOPOPTS: 'CAP_NET_RAW',
  IPV6_FREEBIND: 'CAP_NET_ADMIN',
  IPV6_TRANSPARENT: 'CAP_NET_ADMIN',
  SO_BINDTODEVICE: 'CAP_NET_RAW',
  // Entering another network namespace needs CAP_SYS_ADMIN (kernel/nsproxy.c, setns).
  setns: 'CAP_SYS_ADMIN',
};

// Duck-typed, not instanceof: errors built by the addon belong to the main realm, which is
// not the realm of code running in a vm context (jest, REPL contexts).
function isSystemErrorShape(err: unknown): err is SystemError {
  return typeof err === 'object' && err !== null && typeof (err as SystemError).code === 'string' && typeof (err as SystemError).syscall === 'string';
}

/** The system's own text for an errno ('no such device'), as libuv words it. */
function describeErrno(errno: number): string | undefined {
  return getSystemErrorMap().get(errno < 0 ? errno : -errno)?.[1];
}

/**
 * Adds context to a system error (from the native layer, Node's fs, or systemError()) and
 * rewrites its message into the one shape every system error of ip6sock has:
 * `<syscall> <option?> <CODE>: <description> (<where>)[; needs <capability>][; <hint>]`.
 * The description is the error's own (`description`, set by the native layer and by
 * systemError()) or else the system's text for its errno. Non-system errors pass through
 * untouched.
 */
export function withContext(err: unknown, context: ErrorContext): unknown {
  if (!isSystemErrorShape(err)) return err;
  const e = err as SystemError & { description?: string };
  for (const [k, v] of Object.entries(context)) {
    if (v !== undefined && k !== 'hint' && k !== 'hints') (e as unknown as Record<string, unknown>)[k] = v;
  }
  if ((e.code === 'EPERM' || e.code === 'EACCES') && e.capability === undefined) {
    const cap = CAPABILITY_BY_OPTION[context.option ?? e.syscall];
    if (cap) e.capability = cap;
  }
  if (e.description === undefined && typeof e.errno === 'number') {
    const text = describeErrno(e.errno);
    if (text !== undefined) e.description = text;
  }
  const parts: string[] = [e.syscall];
  // The option stays named when context is added a second time (a socket's netns on top of a call's own).
  const option = context.option ?? e.option;
  if (option) parts.push(option);
  let message = `${parts.join(' ')} ${e.code}`;
  if (e.description) message += `: ${e.description}`;
  const where: string[] = [];
  const address = context.address ?? e.address;
  const port = context.address !== undefined ? context.port : e.port;
  if (address !== undefined) where.push(port !== undefined ? `[${address}]:${port}` : address);
  const iface = context.interface ?? e.interface;
  if (iface !== undefined) where.push(`interface ${iface}`);
  const netns = context.netns ?? e.netns;
  if (netns !== undefined) where.push(`netns ${netns}`);
  if (where.length) message += ` (${where.join(', ')})`;
  if (e.capability) message += `; needs ${e.capability}`;
  const hint = context.hint ?? context.hints?.[e.code] ?? (e as { hint?: string }).hint;
  if (hint) {
    message += `; ${hint}`;
    Object.defineProperty(e, 'hint', { value: hint, enumerable: false, configurable: true, writable: true });
  }
  e.message = message;
  return e;
}

/**
 * The one builder of the system errors ip6sock makes itself (a send's negative errno, an
 * interface that does not exist or was removed): shaped like Node's own (`code`, `errno`,
 * `syscall`) and worded by withContext() like every error of a failed native call.
 * `errno` is negative, as Node and the kernel report it (-19), or an errno name ('ENODEV');
 * `description` replaces the system's text for the errno when the situation says more.
 */
export function systemError(errno: number | string, syscall: string, context: ErrorContext = {}, description?: string): SystemError {
  const number = typeof errno === 'number' ? errno : -(os.constants.errno as Record<string, number>)[errno];
  const code = typeof errno === 'string' ? errno : (getSystemErrorMap().get(number)?.[0] ?? `Unknown system error ${number}`);
  const err = new Error(code) as SystemError & { description?: string };
  err.code = code;
  err.errno = number;
  err.syscall = syscall;
  const text = description ?? describeErrno(number);
  if (text !== undefined) err.description = text;
  withContext(err, context);
  // The stack's first line was written with the provisional message.
  Error.captureStackTrace(err, systemError);
  return err;
}

/** Runs a native call and rethrows its error with context. */
export function attempt<T>(context: ErrorContext, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw withContext(err, context);
  }
}

/**
 * An interface that does not exist, shaped like the system error the kernel would give
 * (ENODEV), so callers handle it the same way whether lib/ or the kernel noticed first.
 */
export function noSuchInterface(spec: string | number, netns?: string): SystemError {
  const named = typeof spec === 'string' ? `'${spec}'` : `with index ${spec}`;
  return systemError('ENODEV', typeof spec === 'string' ? 'if_nametoindex' : 'if_indextoname', { interface: spec, netns }, `no such interface ${named}`);
}

/** How every message names an interface: its name and its index, `eth0 (2)`. */
export function interfaceLabel(iface: InterfaceRef): string {
  return `${iface.name} (${iface.index})`;
}

/**
 * @internal
 * The error a socket emits when an interface it was explicitly given (its `device`, a
 * membership's interface) is removed: code ENODEV like the kernel's own answer for a
 * missing device, `syscall` naming the notification that said so.
 */
export function interfaceRemovedError(iface: InterfaceRef, netns: string | undefined, consequence: string): SystemError {
  const where = netns === undefined ? '' : ` from netns ${netns}`;
  return systemError('ENODEV', 'RTM_DELLINK', { interface: interfaceLabel(iface), netns }, `interface ${interfaceLabel(iface)} was removed${where}: ${consequence}`);
}

/**
 * @internal
 * A problem that must not stop a socket (a follow-up join that failed, a watcher that
 * died): 'warning' on the emitter when someone listens, else a process warning, so it is
 * never silent and never an uncaught 'error'.
 */
export function warn(emitter: EventEmitter, err: Error): void {
  if (emitter.listenerCount('warning') > 0) emitter.emit('warning', err);
  else process.emitWarning(err.message, { type: 'Ip6sockWarning', code: (err as Partial<CodedError>).code });
}

/** An operation ended by its AbortSignal: Node's AbortError (code ABORT_ERR), with the signal's reason as cause. */
export function abortError(reason: unknown): CodedError {
  const err = coded(new Error('The operation was aborted', { cause: reason }), 'ABORT_ERR');
  err.name = 'AbortError';
  return err;
}
