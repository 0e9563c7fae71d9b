/**
 * Node-style errors. Every error ip6sock throws or emits has a string `code`:
 * argument errors use Node's own codes (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE,
 * ERR_OUT_OF_RANGE), failed system calls use the errno name ('EPERM') with `errno`,
 * `syscall` and whatever context names the object involved.
 */
import type { EventEmitter } from 'node:events';
import * as os from 'node:os';
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

/**
 * Adds context to an error thrown by the native layer (which knows only errno and syscall)
 * and rewrites its message to say what failed, on what, and why. Non-system errors pass
 * through untouched.
 */
export function withContext(err: unknown, context: ErrorContext): unknown {
  if (!isSystemErrorShape(err)) return err;
  const e = err as SystemError;
  for (const [k, v] of Object.entries(context)) {
    if (v !== undefined && k !== 'hint' && k !== 'hints') (e as unknown as Record<string, unknown>)[k] = v;
  }
  if ((e.code === 'EPERM' || e.code === 'EACCES') && e.capability === undefined) {
    const cap = CAPABILITY_BY_OPTION[context.option ?? e.syscall];
    if (cap) e.capability = cap;
  }
  const parts: string[] = [e.syscall];
  if (context.option) parts.push(context.option);
  let message = `${parts.join(' ')} ${e.code}`;
  const detail = (e as SystemError & { description?: string }).description;
  if (detail) message += `: ${detail}`;
  const where: string[] = [];
  if (context.address !== undefined) where.push(context.port !== undefined ? `[${context.address}]:${context.port}` : context.address);
  if (context.interface !== undefined) where.push(`interface ${context.interface}`);
  if (context.netns !== undefined) where.push(`netns ${context.netns}`);
  if (where.length) message += ` (${where.join(', ')})`;
  if (e.capability) message += `; needs ${e.capability}`;
  const hint = context.hint ?? context.hints?.[e.code];
  if (hint) message += `; ${hint}`;
  e.message = message;
  return e;
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
  const where = netns === undefined ? '' : ` in netns ${netns}`;
  const err = new Error(`no such interface ${typeof spec === 'string' ? `'${spec}'` : `with index ${spec}`}${where}`) as SystemError;
  err.code = 'ENODEV';
  err.errno = -19;
  err.syscall = typeof spec === 'string' ? 'if_nametoindex' : 'if_indextoname';
  err.interface = spec;
  if (netns !== undefined) err.netns = netns;
  return err;
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
  const err = new Error(`interface ${interfaceLabel(iface)} was removed${where}: ${consequence}`) as SystemError;
  err.code = 'ENODEV';
  err.errno = -os.constants.errno.ENODEV;
  err.syscall = 'RTM_DELLINK';
  err.interface = interfaceLabel(iface);
  if (netns !== undefined) err.netns = netns;
  return err;
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
