/**
 * Options objects take exactly the keys their interfaces declare. The keys come from the
 * declarations, as the compiler sees lib/index.ts: each call gets an object with every key
 * of its interface present (undefined where the key is optional), and must not refuse any
 * of them as unknown; the same call with a misspelt key must refuse it, naming the key and
 * the nearest known one. (The lists in lib/ are checked against the interfaces at compile
 * time as well, by optionKeys(); this checks that each call uses the right list.)
 *
 * The calls run in the test's own namespace on loopback, or fail harmlessly right after the
 * key check (an interface index that does not exist, a missing privilege): what is judged
 * is only whether a key was refused as unknown.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import * as ts from 'typescript';
import { AnycastGroup, MulticastSocket, RawSocket, UdpSocket, connectTcp, createTcpServer, hopByHop, interfaces, packet, system } from '../../lib';

const NO_SUCH_INDEX = 99999;

/** The property names of every exported interface or type alias of lib/index.ts, inherited ones included. */
function declaredKeys(): Map<string, string[]> {
  const index = path.join(__dirname, '..', '..', 'lib', 'index.ts');
  const program = ts.createProgram([index], { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, strict: true, skipLibCheck: true, noEmit: true, types: ['node'], lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'] });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(index) as ts.SourceFile) as ts.Symbol;
  const keys = new Map<string, string[]>();
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const s = (exported.flags & ts.SymbolFlags.Alias) !== 0 ? checker.getAliasedSymbol(exported) : exported;
    if ((s.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) === 0) continue;
    keys.set(exported.name, checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(s)).map((p) => p.name));
  }
  return keys;
}

/** An object with every key, undefined unless `given` sets it. */
function everyKey(keys: readonly string[], given: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...Object.fromEntries(keys.map((k) => [k, undefined])), ...given };
}

/** The error of a call (thrown or rejected), or undefined; what it made is closed. */
async function outcome(call: () => unknown): Promise<unknown> {
  try {
    const made = await call();
    if (made instanceof net.Socket) made.destroy();
    else if (made instanceof net.Server) await new Promise((resolve) => made.close(resolve));
    else if (typeof made === 'object' && made !== null && typeof (made as { close?: unknown }).close === 'function') await (made as { close(): Promise<void> }).close();
    return undefined;
  } catch (err) {
    return err;
  }
}

const unknownKey = (err: unknown): boolean => (err as { code?: unknown } | undefined)?.code === 'ERR_INVALID_ARG_VALUE' && /is not an option here/.test(String((err as Error).message));

interface Case {
  /** The options interface, by its exported name. */
  type: string;
  /** Calls the API with `options` in the options position. */
  call(options: Record<string, unknown>): unknown;
  /** Values for the required keys (and those the call needs to get past the key check). */
  given?: Record<string, unknown>;
}

/** The options interfaces of this module's rows; others are listed with the reason. */
const NOT_HERE: ReadonlyMap<string, string> = new Map([
  ['SocketOptions', 'a part of every socket class options: checked through them'],
  ['ReplyOptions', "taken by info.reply() of a received anycast datagram: the hostile table's 'AnycastGroup info.reply()' row misspells one"],
  ['RouterAlertSocketOptions', 'router-alert sockets check their own keys (lib/sockets/routeralert/)'],
  ['ForwardOptions', 'router-alert sockets check their own keys (lib/sockets/routeralert/)'],
]);

let udp: UdpSocket;
let server: net.Server;
let multicast: MulticastSocket;

beforeAll(async () => {
  udp = new UdpSocket({ address: '::1' });
  multicast = new MulticastSocket();
  server = await createTcpServer({ address: '::1' });
});

afterAll(async () => {
  await udp.close();
  await multicast.close();
  await new Promise((resolve) => server.close(resolve));
});

const cases: Case[] = [
  { type: 'UdpSocketOptions', call: (o) => new UdpSocket(o) },
  { type: 'SendOptions', call: (o) => udp.send('to itself', o), given: { address: '::1', port: () => udp.address().port } },
  { type: 'MulticastSocketOptions', call: (o) => new MulticastSocket(o) },
  { type: 'JoinOptions', call: (o) => multicast.join('ff02::13', o as never), given: { interface: NO_SUCH_INDEX } },
  { type: 'BlockOptions', call: (o) => multicast.block('ff02::13', o as never), given: { interface: NO_SUCH_INDEX, source: '2001:db8::1' } },
  { type: 'AnycastGroupOptions', call: (o) => new AnycastGroup('2001:db8::99', o as never), given: { interface: NO_SUCH_INDEX } },
  { type: 'RawSocketOptions', call: (o) => new RawSocket(o as never), given: { protocol: 58 } },
  // The socket is made only to hold the call: without privilege its constructor refuses first.
  { type: 'RawSendOptions', call: (o) => withRaw((raw) => raw.send(Buffer.from([128, 0, 0, 0, 0, 1, 0, 1]), o as never)), given: { address: '::1' } },
  { type: 'RawGroupOptions', call: (o) => withRaw((raw) => raw.join('ff02::16', o as never)), given: { interface: NO_SUCH_INDEX } },
  { type: 'TcpServerOptions', call: (o) => createTcpServer(o), given: { address: '::1' } },
  { type: 'TcpConnectOptions', call: (o) => connectTcp(o as never), given: { address: '::1', port: () => (server.address() as net.AddressInfo).port } },
  { type: 'WatchOptions', call: (o) => interfaces.watch(o) },
  { type: 'NamespaceOptions', call: (o) => interfaces.list(o) },
  { type: 'NamespaceOptions', call: (o) => interfaces.nameToIndex('lo', o) },
  { type: 'NamespaceOptions', call: (o) => interfaces.indexToName(1, o) },
  { type: 'NamespaceOptions', call: (o) => system.sysctl('ipv6/conf/all/forwarding', o) },
  { type: 'SourceForOptions', call: (o) => interfaces.sourceFor('::1', o) },
  { type: 'HopByHopEncodeOptions', call: (o) => hopByHop.encode([{ type: 5, name: 'routerAlert', routerAlert: 0 }], o) },
  { type: 'HopByHopDecodeOptions', call: (o) => hopByHop.decode(Buffer.from([17, 0, 5, 2, 0, 0, 1, 0]), o) },
  { type: 'ParseOptions', call: (o) => packet.parsePacket(packet.buildUdpPacket({ source: '::1', destination: '::1', sourcePort: 1, destinationPort: 2, data: Buffer.from('x') }), o) },
  { type: 'SerializeOptions', call: (o) => packet.serializePacket(packet.parsePacket(packet.buildUdpPacket({ source: '::1', destination: '::1', sourcePort: 1, destinationPort: 2, data: Buffer.from('x') })), o) },
];

/** Runs `fn` on a fresh ICMPv6 raw socket, closed after; EPERM without CAP_NET_RAW. */
async function withRaw(fn: (raw: RawSocket) => unknown): Promise<unknown> {
  const raw = new RawSocket({ protocol: 58 });
  try {
    return await fn(raw);
  } finally {
    await raw.close();
  }
}

/** Resolves `given` values that are functions (read once the shared sockets exist). */
function resolved(given: Record<string, unknown> = {}): Record<string, unknown> {
  return Object.fromEntries(Object.entries(given).map(([k, v]) => [k, typeof v === 'function' ? (v as () => unknown)() : v]));
}

const declared = declaredKeys();

test('every exported options interface has a case here, or a reason why not', () => {
  const options = [...declared.keys()].filter((name) => name.endsWith('Options'));
  const missing = options.filter((name) => !cases.some((c) => c.type === name) && !NOT_HERE.has(name));
  expect(missing).toEqual([]);
});

describe.each(cases)('$type', (c) => {
  test('every declared key is accepted', async () => {
    const keys = declared.get(c.type);
    expect(keys?.length).toBeGreaterThan(0);
    const err = await outcome(() => c.call(everyKey(keys as string[], resolved(c.given))));
    expect(unknownKey(err) ? (err as Error).message : undefined).toBeUndefined();
  });

  test('a misspelt key is refused, naming it and the nearest declared one', async () => {
    const keys = declared.get(c.type) as string[];
    const name = keys.find((k) => k.length >= 4) ?? keys[0];
    const misspelt = name.slice(0, -1);
    const err = await outcome(() => c.call({ ...resolved(c.given), [misspelt]: 1 }));
    expect(err).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining(`.${misspelt}' is not an option here; the nearest known one is '${name}'`) });
  });
});

test("the misspelling of the issue: { prot: 7017 } is refused as 'port', it does not bind a random port", async () => {
  const err = await outcome(() => new UdpSocket({ prot: 7017 } as never));
  expect(err).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: "The argument 'options.prot' is not an option here; the nearest known one is 'port'. Received type number (7017)" });
});
