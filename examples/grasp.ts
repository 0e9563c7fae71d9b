/**
 * ip6sock grasp: a GRASP node (RFC 8990) that other implementations can talk to.
 *
 * One MulticastSocket on ALL_GRASP_NEIGHBORS (ff02::13) port 7017 joined on every
 * interface, speaking out of each interface through per-packet PKTINFO (the GRASP seed
 * opens a socket per interface only because Python's socket module made it do so), and a
 * TCP listener on the same port number in the same namespace, where M_RESPONSE arrives.
 */
import { randomInt } from 'node:crypto';
import * as net from 'node:net';
import { parseArgs } from 'node:util';
import { Decoder, Encoder } from 'cbor-x';
import { connectTcp, createTcpServer, interfaces, MessageInfo, MulticastSocket, parseIpv6, formatIpv6 } from 'ip6sock';

export const summary = 'GRASP node (RFC 8990): floods, discovery and responses on ff02::13 port 7017';
export const usage = `usage: ip6sock grasp [--netns NAME] [--interface IF]... [--flood NAME=VALUE]...
                    [--register NAME=VALUE]... [--discover NAME]... [--interval S] [--duration S]

Joins ALL_GRASP_NEIGHBORS ff02::13 port 7017 on every interface (or those given), prints
the floods it receives with their arrival interface, answers M_DISCOVERY for registered
objectives with M_RESPONSE over TCP, floods its own objectives (M_FLOOD, hop limit 1, on
each interface) and discovers objectives, with its TCP listener on port 7017 too.

  --netns NAME          run inside this network namespace
  --interface IF        use only this interface (repeatable)
  --flood NAME=VALUE    flood this synchronization objective (F_SYNCH) every interval
  --register NAME=VALUE answer discoveries of this objective
  --discover NAME       send M_DISCOVERY for this objective every interval
  --interval S          seconds between floods and discoveries (default 5)
  --duration S          exit after this many seconds (default: run until Ctrl-C)
  --port N              GRASP port (default 7017; other ports only for experiments)`;

/** Wire constants of RFC 8990. */
export const GRASP = Object.freeze({
  ALL_GRASP_NEIGHBORS: 'ff02::13',
  LISTEN_PORT: 7017,
  M_NOOP: 0,
  M_DISCOVERY: 1,
  M_RESPONSE: 2,
  M_FLOOD: 9,
  O_IPv6_LOCATOR: 103,
  F_DISC: 1 << 0,
  F_NEG: 1 << 1,
  F_SYNCH: 1 << 2,
  F_NEG_DRY: 1 << 3,
  IPPROTO_TCP: 6,
  IPPROTO_UDP: 17,
});

/** objective = [name, flags, loop-count, value] */
export interface Objective {
  name: string;
  flags: number;
  loopCount: number;
  value: unknown;
}

/** O_IPv6_LOCATOR = [103, address (16 bytes), protocol, port] */
export interface Locator {
  address: string;
  protocol: number;
  port: number;
}

export type GraspMessage =
  | { type: 'noop' }
  | { type: 'discovery'; sessionId: number; initiator: string; objective: Objective }
  | { type: 'response'; sessionId: number; initiator: string; ttl: number; locator: Locator | null; objective?: Objective }
  | { type: 'flood'; sessionId: number; initiator: string; ttl: number; objectives: Array<{ objective: Objective; locator: Locator | null }> }
  | { type: 'other'; code: number };

class Malformed extends Error {
  readonly code = 'ERR_GRASP_MALFORMED';
}

function u32(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Malformed(`${what} is not a 32-bit unsigned integer`);
  return v;
}

function address16(v: unknown, what: string): string {
  if (!(v instanceof Uint8Array) || v.length !== 16) throw new Malformed(`${what} is not a 16-byte address`);
  return formatIpv6(v);
}

function objectiveOf(v: unknown): Objective {
  if (!Array.isArray(v) || v.length < 3 || v.length > 4 || typeof v[0] !== 'string' || typeof v[1] !== 'number' || typeof v[2] !== 'number') {
    throw new Malformed('objective is not [name, flags, loop-count, ?value]');
  }
  return { name: v[0], flags: v[1], loopCount: v[2], value: v.length === 4 ? v[3] : null };
}

function locatorOf(v: unknown): Locator | null {
  if (Array.isArray(v) && v.length === 0) return null;
  if (!Array.isArray(v) || v[0] !== GRASP.O_IPv6_LOCATOR || v.length !== 4) return null; // other locator kinds: not ours to use
  return { address: address16(v[1], 'locator address'), protocol: u32(v[2], 'locator protocol'), port: u32(v[3], 'locator port') };
}

/**
 * Plain CBOR both ways, for peers that are not JavaScript: no cbor-x record or structured-
 * clone extensions, maps as objects, byte strings as Buffers, integers beyond 2^53 as
 * bigints; a Uint8Array is sent as a plain byte string (not tag 64).
 */
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });
const encoder = new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: true });

/** Throws unless a decoded value is a tree: shared-value tags (28/29) can make it contain itself. */
function acyclic(v: unknown, ancestors = new Set<object>()): void {
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return;
  if (ancestors.has(v)) throw new Malformed('a value contains itself');
  ancestors.add(v);
  for (const child of Array.isArray(v) ? v : Object.values(v)) acyclic(child, ancestors);
  ancestors.delete(v);
}

/** An objective value for a log line: JSON, with big integers as their digits. */
export function formatValue(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
}

/** Decodes one GRASP message; throws ERR_GRASP_MALFORMED for anything that is not one. */
export function decodeGrasp(bytes: Uint8Array): GraspMessage {
  let items: unknown[];
  try {
    items = decoder.decodeMultiple(bytes) as unknown[];
  } catch (err) {
    // Truncated or ill-formed input, and nesting deeper than the stack (a RangeError).
    throw new Malformed(`not CBOR: ${(err as Error).message}`);
  }
  try {
    acyclic(items);
  } catch (err) {
    throw err instanceof Malformed ? err : new Malformed(`nested too deeply: ${(err as Error).message}`);
  }
  if (items.length !== 1) throw new Malformed(`expected one CBOR item, got ${items.length}`);
  const m = items[0];
  if (!Array.isArray(m) || m.length === 0 || typeof m[0] !== 'number') throw new Malformed('not a CBOR array starting with a message type');
  switch (m[0]) {
    case GRASP.M_NOOP:
      return { type: 'noop' };
    case GRASP.M_DISCOVERY:
      if (m.length !== 4) throw new Malformed('M_DISCOVERY must have 4 elements');
      return { type: 'discovery', sessionId: u32(m[1], 'session-id'), initiator: address16(m[2], 'initiator'), objective: objectiveOf(m[3]) };
    case GRASP.M_RESPONSE: {
      if (m.length < 5 || m.length > 6) throw new Malformed('M_RESPONSE must have 5 or 6 elements');
      const r: GraspMessage = { type: 'response', sessionId: u32(m[1], 'session-id'), initiator: address16(m[2], 'initiator'), ttl: u32(m[3], 'ttl'), locator: locatorOf(m[4]) };
      if (m.length === 6) r.objective = objectiveOf(m[5]);
      return r;
    }
    case GRASP.M_FLOOD: {
      if (m.length < 5) throw new Malformed('M_FLOOD needs at least one objective');
      const objectives = m.slice(4).map((pair: unknown) => {
        if (!Array.isArray(pair) || pair.length !== 2) throw new Malformed('M_FLOOD entries are [objective, locator-option or []]');
        return { objective: objectiveOf(pair[0]), locator: locatorOf(pair[1]) };
      });
      return { type: 'flood', sessionId: u32(m[1], 'session-id'), initiator: address16(m[2], 'initiator'), ttl: u32(m[3], 'ttl'), objectives };
    }
    default:
      return { type: 'other', code: m[0] };
  }
}

const objectiveWire = (o: Objective): unknown[] => [o.name, o.flags, o.loopCount, o.value];
const locatorWire = (l: Locator): unknown[] => [GRASP.O_IPv6_LOCATOR, parseIpv6(l.address), l.protocol, l.port];

export function encodeFlood(sessionId: number, initiator: string, ttl: number, objectives: Objective[]): Buffer {
  return encoder.encode([GRASP.M_FLOOD, sessionId, parseIpv6(initiator), ttl, ...objectives.map((o) => [objectiveWire(o), []])]);
}

export function encodeDiscovery(sessionId: number, initiator: string, objective: Objective): Buffer {
  return encoder.encode([GRASP.M_DISCOVERY, sessionId, parseIpv6(initiator), objectiveWire(objective)]);
}

export function encodeResponse(sessionId: number, initiator: string, ttl: number, locator: Locator, objective: Objective): Buffer {
  return encoder.encode([GRASP.M_RESPONSE, sessionId, parseIpv6(initiator), ttl, locatorWire(locator), objectiveWire(objective)]);
}

function parsePair(text: string, flag: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw Object.assign(new Error(`${flag} takes NAME=VALUE, got '${text}'`), { code: 'ERR_INVALID_ARG_VALUE' });
  return [text.slice(0, at), text.slice(at + 1)];
}

/** Reads one CBOR item from a TCP connection (GRASP sends one per connection here). */
function readAll(socket: net.Socket, limit = 65536): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    socket.setTimeout(5000, () => socket.destroy(new Error('timed out reading')));
    socket.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) socket.destroy(new Error(`more than ${limit} bytes`));
      else chunks.push(d);
    });
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

export async function main(args: string[], signal: AbortSignal): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      netns: { type: 'string' },
      interface: { type: 'string', multiple: true },
      flood: { type: 'string', multiple: true, default: [] },
      register: { type: 'string', multiple: true, default: [] },
      discover: { type: 'string', multiple: true, default: [] },
      interval: { type: 'string', default: '5' },
      duration: { type: 'string' },
      port: { type: 'string', default: String(GRASP.LISTEN_PORT) },
    },
  });
  const netns = values.netns;
  const port = Number(values.port);
  const floods = values.flood.map((t) => parsePair(t, '--flood'));
  const registered = new Map(values.register.map((t) => parsePair(t, '--register')));
  const intervalMs = Number(values.interval) * 1000;

  // WHO AM I: the interfaces to speak on, and an address to name ourselves by.
  const all = interfaces.list({ netns }).filter((i) => i.flags.up && i.flags.multicast && !i.flags.loopback && i.linkLocal.length > 0);
  const wanted = values.interface;
  const links = wanted ? all.filter((i) => wanted.includes(i.name) || wanted.includes(String(i.index))) : all;
  if (links.length === 0) throw Object.assign(new Error('no usable interface (up, multicast, with a link-local address)'), { code: 'ENODEV' });
  const initiator = links.flatMap((i) => i.global)[0]?.address ?? links[0].linkLocal[0].address;
  console.log(`grasp node ${initiator}: interfaces ${links.map((i) => `${i.name} (${i.index}, ${i.linkLocal[0].address})`).join(', ')}`);

  const sock = new MulticastSocket({ port, reuseAddr: true, multicastHopLimit: 1, netns, ignoreOwn: true, signal });
  for (const i of links) sock.join(GRASP.ALL_GRASP_NEIGHBORS, { interface: i.index });
  const synchronized = new Map<string, { value: unknown; from: string; expires: number }>();

  const respond = async (msg: Extract<GraspMessage, { type: 'discovery' }>, info: MessageInfo): Promise<void> => {
    const value = registered.get(msg.objective.name);
    if (value === undefined) return;
    const locator: Locator = { address: interfaces.sourceFor(info.address, { netns }), protocol: GRASP.IPPROTO_TCP, port };
    const reply = encodeResponse(msg.sessionId, msg.initiator, 60000, locator, { ...msg.objective, value });
    const c = await connectTcp({ netns, address: info.address, port: info.port, signal });
    await new Promise<void>((resolve, reject) => {
      c.once('close', () => resolve());
      c.once('error', reject);
      c.end(reply);
    });
    console.log(`discovery   ${info.interface?.name}  from ${info.address} port ${info.port}: ${msg.objective.name} -> responded, locator [${locator.address}]:${port}`);
  };

  sock.on('message', (data: Buffer, info: MessageInfo) => {
    let msg: GraspMessage;
    try {
      msg = decodeGrasp(data);
    } catch (err) {
      console.error(`dropped malformed message from ${info.address} on ${info.interface?.name}: ${(err as Error).message}`);
      return;
    }
    if (msg.type === 'flood') {
      for (const { objective, locator } of msg.objectives) {
        const synch = (objective.flags & GRASP.F_SYNCH) !== 0;
        if (synch) synchronized.set(objective.name, { value: objective.value, from: msg.initiator, expires: Date.now() + msg.ttl });
        const where = locator ? ` locator [${locator.address}]:${locator.port}` : '';
        console.log(`flood       ${info.interface?.name}  from ${msg.initiator}: ${objective.name} = ${formatValue(objective.value)}${synch ? ' (cached)' : ''}${where}`);
      }
    } else if (msg.type === 'discovery') {
      // Stopping the node aborts a response still connecting: that is the stop, not a failure.
      respond(msg, info).catch((err: Error) => {
        if (!signal.aborted) console.error(`response to ${info.address}: ${err.message}`);
      });
    }
    // M_NOOP and message types this node does not implement are ignored, as RFC 8990 allows.
  });

  // Discovery responses come back over TCP to the port the discovery left from.
  const server = await createTcpServer({ netns, port }, (conn) => {
    readAll(conn)
      .then((bytes) => {
        const msg = decodeGrasp(bytes);
        if (msg.type !== 'response') throw new Malformed(`expected M_RESPONSE, got ${msg.type}`);
        const where = msg.locator ? `[${msg.locator.address}]:${msg.locator.port}` : 'no locator';
        console.log(`response    ${msg.objective?.name ?? '?'} = ${formatValue(msg.objective?.value)} at ${where}`);
      })
      .catch((err: Error) => console.error(`dropped TCP message: ${err.message}`));
  });

  const tick = (): void => {
    for (const i of links) {
      if (floods.length > 0) {
        const objectives = floods.map(([name, value]) => ({ name, flags: GRASP.F_SYNCH, loopCount: 1, value }));
        sock.send(encodeFlood(randomInt(2 ** 32), initiator, 60000, objectives), { address: GRASP.ALL_GRASP_NEIGHBORS, port: GRASP.LISTEN_PORT, interface: i.index, hopLimit: 1 }).catch((err: Error) => console.error(`flood on ${i.name}: ${err.message}`));
      }
      for (const name of values.discover) {
        const objective = { name, flags: GRASP.F_DISC, loopCount: 1, value: null };
        sock.send(encodeDiscovery(randomInt(2 ** 32), initiator, objective), { address: GRASP.ALL_GRASP_NEIGHBORS, port: GRASP.LISTEN_PORT, interface: i.index, hopLimit: 1 }).catch((err: Error) => console.error(`discovery on ${i.name}: ${err.message}`));
      }
    }
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  const stopAfter = values.duration === undefined ? undefined : setTimeout(() => void sock.close(), Number(values.duration) * 1000);

  await new Promise<void>((resolve) => sock.once('close', () => resolve()));
  clearInterval(timer);
  if (stopAfter) clearTimeout(stopAfter);
  await new Promise((r) => server.close(r));
  console.log(`stopped; ${synchronized.size} objective(s) cached: ${[...synchronized.keys()].join(', ') || 'none'}`);
}
