/**
 * One forwarding tap per router-alert value and namespace. The kernel hands a tapped packet
 * to EVERY socket registered for its value, and forwards it no more: two taps that both
 * forward it send it on twice. So a tap that forwards holds a lock that names its namespace,
 * family and value (or IPv4 protocol): an abstract AF_UNIX socket name, which the kernel
 * keeps one table of per network namespace (the namespace the socket was made in), lets
 * only one socket bind, and frees when that socket closes, also when its process dies.
 *
 * A tap bound to a device shares packets only with taps of the same device and with the
 * unbound ones, so its name carries the device index; an unbound tap checks that no
 * device-bound tap of the value exists, and a device-bound one that no unbound tap does.
 * Both check after taking their own name: of two that race, at least one sees the other.
 * A tap with isolation off also takes other namespaces' packets: no lock reaches that far.
 *
 * The lock socket listens, so that a refused tap can connect to it and learn the holder's
 * pid from the kernel (SO_PEERCRED). Nobody accepts those connections: each stays queued
 * until the lock goes, and past the backlog the pid is no longer known (the refusal stands).
 * @packageDocumentation
 */
import * as os from 'node:os';
import { stateError, type CodedError } from '../../errors';
import { native, type NativeSocket } from '../../core/native';
import { readNetFile } from '../../links/procnet';
import type { Family } from '../../validate';

/** What a tap takes: its family, value (IPv6) or protocol (IPv4), and device (0: none). */
export interface TapKey {
  family: Family;
  /** The Router Alert value (IPv6) or the protocol (IPv4). */
  selector: number;
  deviceIndex: number;
}

/** Error code of a second forwarding tap. */
export const TAPPED_CODE = 'ERR_ROUTER_ALERT_TAPPED';

/** A refused tap: who holds what it asked for. */
export interface TappedError extends CodedError {
  code: typeof TAPPED_CODE;
  family: Family;
  /** The Router Alert value (IPv6 taps). */
  value?: number;
  /** The protocol (IPv4 taps). */
  protocol?: number;
  /** The namespace as the tap was given it (undefined: the process's own). */
  netns?: string;
  /** The process holding the tap, when the kernel could say. */
  pid?: number;
}

/** Refused connections kept for pid lookups; see the module comment. */
const BACKLOG = 64;

/** Attempts when the holder goes away between our bind and our look at it. */
const ATTEMPTS = 3;

function baseName(key: TapKey): string {
  return `ip6sock/router-alert/${key.family}/${key.selector}`;
}

function nameOf(key: TapKey): string {
  return key.deviceIndex === 0 ? baseName(key) : `${baseName(key)}%${key.deviceIndex}`;
}

function unixSocket(nsPath: string | null): NativeSocket {
  const c = native().constants;
  return new (native().Socket)(c.AF_UNIX, c.SOCK_STREAM, 0, nsPath, null);
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? ((err as { code?: unknown }).code as string | undefined) : undefined;
}

/**
 * Whether `name` is held in the namespace, and by which process: undefined when nobody holds
 * it, 0 when somebody does but the kernel did not say who.
 */
function holderOf(name: string, nsPath: string | null): number | undefined {
  const probe = unixSocket(nsPath);
  try {
    probe.connect(name, 0, 0);
    const c = native().constants;
    // struct ucred { pid_t pid; uid_t uid; gid_t gid; }, host byte order.
    const cred = probe.getBuffer(c.SOL_SOCKET, c.SO_PEERCRED, 12);
    const pid = os.endianness() === 'LE' ? cred.readInt32LE(0) : cred.readInt32BE(0);
    return pid > 0 ? pid : 0;
  } catch (err) {
    // ECONNREFUSED: no such name (or not listening yet). EAGAIN: its backlog is full.
    return errnoOf(err) === 'ECONNREFUSED' ? undefined : 0;
  } finally {
    probe.close();
  }
}

/**
 * The abstract names of the namespace's sockets that start with `prefix`, from
 * /proc/net/unix read inside it ('@' stands for the leading NUL there).
 */
function namesStartingWith(prefix: string, netns: string | undefined): string[] {
  let table: string;
  try {
    table = readNetFile('unix', netns);
  } catch {
    // Without /proc/net/unix (a restricted /proc) this one check is skipped, not the tap.
    return [];
  }
  const names: string[] = [];
  for (const line of table.split('\n')) {
    const path = line.trim().split(/\s+/)[7];
    if (path !== undefined && path.startsWith(`@${prefix}`)) names.push(path.slice(1));
  }
  return names;
}

function refusal(key: TapKey, netns: string | undefined, device: string | undefined, pid: number | undefined): TappedError {
  const alerts = key.family === 6 ? `Router Alert value ${key.selector}` : `IPv4 router alerts of protocol ${key.selector}`;
  const what = device === undefined ? alerts : `${alerts} on ${device}`;
  const where = netns === undefined ? 'this network namespace' : `network namespace ${netns}`;
  const by = pid === undefined || pid === 0 ? 'another RouterAlertSocket' : `a RouterAlertSocket of process ${pid}`;
  const err = stateError(
    TAPPED_CODE,
    `${what} is already tapped in ${where} by ${by}: the kernel would hand every packet to both taps and each would forward it. ` +
      'Close the other tap, or open this one with observe: true to see the packets without forwarding them',
  ) as TappedError;
  err.family = key.family;
  if (key.family === 6) err.value = key.selector;
  else err.protocol = key.selector;
  if (netns !== undefined) err.netns = netns;
  if (pid !== undefined && pid !== 0) err.pid = pid;
  return err;
}

/** A held tap lock; release() (idempotent) frees it, as does the end of the process. */
export class TapLock {
  private constructor(private socket: NativeSocket | undefined) {}

  /**
   * Takes the lock of `key` in the namespace at `nsPath` (`netns` as the caller named it, and
   * `device` the bound device's label, for messages), or throws ERR_ROUTER_ALERT_TAPPED
   * naming the holder.
   */
  static acquire(key: TapKey, nsPath: string | null, netns: string | undefined, device?: string): TapLock {
    const name = nameOf(key);
    let pid: number | undefined;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const socket = unixSocket(nsPath);
      try {
        socket.bind(name, 0, 0);
        socket.listen(BACKLOG);
      } catch (err) {
        socket.close();
        if (errnoOf(err) !== 'EADDRINUSE') throw err;
        pid = holderOf(name, nsPath);
        // Gone in the meantime: try again.
        if (pid === undefined) continue;
        throw refusal(key, netns, device, pid);
      }
      const lock = new TapLock(socket);
      const other = lock.overlapping(key, nsPath, netns);
      if (other === undefined) return lock;
      lock.release();
      throw refusal(key, netns, device, other);
    }
    throw refusal(key, netns, device, pid);
  }

  release(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
  }

  /**
   * The holder (pid, 0 if unknown) of a tap whose packets overlap with `key`'s in another
   * way than by the same name: an unbound tap against device-bound ones, and back.
   */
  private overlapping(key: TapKey, nsPath: string | null, netns: string | undefined): number | undefined {
    const base = baseName(key);
    const others = namesStartingWith(base, netns).filter((name) => (key.deviceIndex === 0 ? name.startsWith(`${base}%`) : name === base));
    if (others.length === 0) return undefined;
    return holderOf(others[0], nsPath) ?? 0;
  }
}
