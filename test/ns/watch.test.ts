// interfaces.watch(): rtnetlink link and address events from a real kernel. Argument checks
// and the netlink codec first (no privilege: the caller's own namespace answers), then links
// and addresses that come and go in a namespace, the async iterator, and an overrun that
// forces a resync.
import { execFileSync } from 'node:child_process';
import { AddressEvent, InterfaceEvent, InterfaceWatcher, LinkEvent, watch } from '../../lib/links/interfaces';
import { list } from '../../lib/links/interfaces';
import { layouts, native } from '../../lib/core/native';
import { RecordBatch } from '../../lib/core/records';
import { parseMessages } from '../../lib/links/rtnetlink';
import { describeRoot } from '../helpers/privileged';
import { hostPair, useTopology } from '../helpers/topology';

/** Every event a watcher emits, in order, with bounded waits for the next matching one. */
class Recorder {
  readonly events: InterfaceEvent[] = [];
  resyncs = 0;
  private taken = 0;
  private wake: (() => void) | undefined;

  constructor(watcher: InterfaceWatcher) {
    const add = (e: InterfaceEvent): void => {
      this.events.push(e);
      this.wake?.();
    };
    watcher.on('link', add);
    watcher.on('address', add);
    watcher.on('resync', () => {
      this.resyncs++;
      this.wake?.();
    });
  }

  /** The next event (after those already taken) that matches, skipping others; rejects after timeoutMs. */
  async next<E extends InterfaceEvent>(what: string, match: (e: InterfaceEvent) => e is E, timeoutMs = 3000): Promise<E> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.taken < this.events.length) {
        const e = this.events[this.taken++];
        if (match(e)) return e;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; saw ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Resolves once `cond` holds (checked after every event); rejects after timeoutMs. */
  async until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms; ${this.events.length} events, ${this.resyncs} resyncs`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}

const isLink =
  (type: LinkEvent['type'], name: string) =>
  (e: InterfaceEvent): e is LinkEvent =>
    e.kind === 'link' && e.type === type && e.name === name;

const isAddress =
  (type: AddressEvent['type'], address: string) =>
  (e: InterfaceEvent): e is AddressEvent =>
    e.kind === 'address' && e.type === type && e.address === address;

function ip(args: string[], input?: string): void {
  execFileSync('ip', args, { input, stdio: ['pipe', 'ignore', 'pipe'] });
}

/** A request to the kernel on a raw NETLINK_ROUTE socket, answered into `into` (for the codec tests). */
async function askKernel(request: Buffer, until: (messages: ReturnType<typeof parseMessages>) => boolean): Promise<{ datagrams: number; messages: ReturnType<typeof parseMessages> }> {
  const c = native().constants;
  const sock = new (native().Socket)(c.AF_NETLINK, c.SOCK_RAW, c.NETLINK_ROUTE, null, null);
  let timer: NodeJS.Timeout | undefined;
  try {
    sock.bindNetlink(0);
    const messages: ReturnType<typeof parseMessages> = [];
    let datagrams = 0;
    const done = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error('no answer from the kernel within 3 s')), 3000);
      sock.onmessages = (count, data, meta, error) => {
        if (error || !data || !meta) return reject(error ?? new Error('empty batch'));
        const records = new RecordBatch().load(count, data, meta);
        for (let i = 0; i < count; i++) {
          messages.push(...parseMessages(records.payload(i)));
          datagrams++;
        }
        if (until(messages)) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
    sock.startReceive(8, 65536);
    // To the kernel (no address), no control data: every plan field "none".
    const plan = new Int32Array(layouts().sendPlan.fields).fill(-1);
    sock.sendBatch([request], plan, [], 1);
    expect(plan[layouts().sendPlan.result]).toBe(request.length);
    await done;
    return { datagrams, messages };
  } finally {
    // Also when a check throws before the answer came: the timer must not outlive the call.
    clearTimeout(timer);
    sock.close();
  }
}

/** nlmsghdr + a zeroed family header (ifinfomsg), optionally with ifi_index. */
function linkRequest(flags: number, seq: number, ifindex = 0): Buffer {
  const c = native().constants;
  const len = c.NLMSG_HDRLEN + c['sizeof(ifinfomsg)'];
  const req = Buffer.alloc(len);
  req.writeUInt32LE(len, c['nlmsghdr.nlmsg_len']);
  req.writeUInt16LE(c.RTM_GETLINK, c['nlmsghdr.nlmsg_type']);
  req.writeUInt16LE(c.NLM_F_REQUEST | flags, c['nlmsghdr.nlmsg_flags']);
  req.writeUInt32LE(seq, c['nlmsghdr.nlmsg_seq']);
  req.writeInt32LE(ifindex, c.NLMSG_HDRLEN + c['ifinfomsg.ifi_index']);
  return req;
}

describe('interfaces.watch() arguments and lifecycle (no privilege: the caller\'s own namespace)', () => {
  test('bad options are coded errors, before any socket exists', () => {
    const bad: Array<[unknown, string]> = [
      ['eth0', 'ERR_INVALID_ARG_TYPE'],
      [[], 'ERR_INVALID_ARG_TYPE'],
      [{ netns: 5 }, 'ERR_INVALID_ARG_TYPE'],
      [{ netns: '' }, 'ERR_INVALID_ARG_VALUE'],
      [{ netns: '..' }, 'ERR_INVALID_ARG_VALUE'],
      [{ signal: {} }, 'ERR_INVALID_ARG_TYPE'],
      [{ receiveBufferSize: '1' }, 'ERR_INVALID_ARG_TYPE'],
      [{ receiveBufferSize: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ receiveBufferSize: 1.5 }, 'ERR_OUT_OF_RANGE'],
    ];
    for (const [options, code] of bad) expect(() => watch(options as never)).toThrow(expect.objectContaining({ code }));
  });

  test('an unknown namespace is ENOENT naming it', () => {
    let caught: unknown;
    try {
      watch({ netns: 'ip6sock-no-such-namespace' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'ENOENT', syscall: 'open', netns: 'ip6sock-no-such-namespace' });
    expect((caught as Error).message).toMatch(/there is no network namespace ip6sock-no-such-namespace/);
  });

  test('list() is the state at start; close() is idempotent, ends iterators and empties the state', async () => {
    // The test closes it; `await using` (a no-op then) closes it if an assertion throws first.
    await using watcher = watch();
    const lo = watcher.list().find((l) => l.index === 1);
    expect(lo).toMatchObject({ name: 'lo', flags: { loopback: true } });
    expect(watcher.list().map((l) => l.index)).toEqual(list().map((i) => i.index).sort((a, b) => a - b));
    // link(): one entry of list(), by index or name; a lookup, so no such link is undefined.
    expect(watcher.link(1)).toEqual(lo);
    expect(watcher.link('lo')).toEqual(lo);
    for (const absent of [99999, 0, -1, 1.5, 'nosuch0', '', '../lo']) expect(watcher.link(absent)).toBeUndefined();
    expect(() => watcher.link(null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const it = watcher[Symbol.asyncIterator]();
    const pending = it.next();
    const closed = new Promise<void>((resolve) => watcher.once('close', resolve));
    const p1 = watcher.close();
    expect(watcher.close()).toBe(p1);
    await p1;
    await closed;
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(watcher.closed).toBe(true);
    expect(watcher.list()).toEqual([]);
    expect(watcher.link(1)).toBeUndefined();
    expect(watcher.addresses()).toEqual([]);
    // Use after close: the watcher answers, it does not throw or reopen.
    expect(await watcher[Symbol.asyncIterator]().next()).toEqual({ value: undefined, done: true });
    expect(watcher.ref()).toBe(watcher);
    expect(watcher.unref()).toBe(watcher);
  });

  test('an AbortSignal closes it, also one aborted before', async () => {
    const ac = new AbortController();
    await using watcher = watch({ signal: ac.signal });
    const closed = new Promise<void>((resolve) => watcher.once('close', resolve));
    ac.abort();
    await closed;
    expect(watcher.closed).toBe(true);
    await using early = watch({ signal: AbortSignal.abort() });
    await new Promise<void>((resolve) => early.once('close', resolve));
    expect(early.closed).toBe(true);
  });

  test('await using closes it', async () => {
    let seen: InterfaceWatcher | undefined;
    {
      await using watcher = watch({ receiveBufferSize: 1 << 20 }).unref();
      seen = watcher;
      expect(watcher.closed).toBe(false);
    }
    expect(seen.closed).toBe(true);
  });
});

describe('netlink codec on answers from the real kernel', () => {
  test('a link dump: several messages per datagram (NLM_F_MULTI), ended by NLMSG_DONE, matching the interface list', async () => {
    const c = native().constants;
    const { messages } = await askKernel(linkRequest(c.NLM_F_DUMP, 7), (m) => m.some((x) => x.kind === 'done'));
    const links = messages.filter((m) => m.kind === 'link');
    expect(links.length).toBeGreaterThan(0);
    expect(messages[messages.length - 1]).toEqual({ kind: 'done', seq: 7, interrupted: false });
    const expected = list().map((i) => ({ index: i.index, name: i.name }));
    expect(links.map((l) => (l.kind === 'link' ? { index: l.index, name: l.name } : null)).sort((a, b) => a!.index - b!.index)).toEqual(expected.sort((a, b) => a.index - b.index));
    expect(links.every((l) => l.kind === 'link' && !l.deleted)).toBe(true);
  });

  test('NLMSG_ERROR carries the errno of the request it answers', async () => {
    // A link that does not exist: the kernel answers ENODEV for sequence 9.
    const { messages } = await askKernel(linkRequest(0, 9, 0x7ffffff0), (m) => m.some((x) => x.kind === 'error'));
    expect(messages).toContainEqual({ kind: 'error', errno: 19, seq: 9 });
  });

  test('lengths that do not fit are ERR_NETLINK_MALFORMED, never a wrong read', () => {
    const c = native().constants;
    const good = linkRequest(0, 1);
    const short = Buffer.from(good);
    short.writeUInt32LE(8, 0);
    expect(() => parseMessages(short)).toThrow(expect.objectContaining({ code: 'ERR_NETLINK_MALFORMED' }));
    const long = Buffer.from(good);
    long.writeUInt32LE(good.length + 4, 0);
    expect(() => parseMessages(long)).toThrow(expect.objectContaining({ code: 'ERR_NETLINK_MALFORMED' }));
    // A NEWLINK with an attribute claiming more bytes than the message has.
    const bad = Buffer.alloc(c.NLMSG_HDRLEN + c['sizeof(ifinfomsg)'] + 8);
    bad.writeUInt32LE(bad.length, 0);
    bad.writeUInt16LE(c.RTM_NEWLINK, 4);
    bad.writeUInt16LE(64, c.NLMSG_HDRLEN + c['sizeof(ifinfomsg)']);
    expect(() => parseMessages(bad)).toThrow(expect.objectContaining({ code: 'ERR_NETLINK_MALFORMED' }));
    // A trailing fragment shorter than a header is not a message.
    expect(parseMessages(Buffer.alloc(4))).toEqual([]);
  });

  test("integers are read in the host's byte order, as netlink writes them (a message built with the host's own typed arrays)", () => {
    const c = native().constants;
    const ifinfo = c.NLMSG_HDRLEN;
    const attr = ifinfo + c['sizeof(ifinfomsg)'];
    const name = Buffer.from('hostorder0\0');
    const rtaLength = c['sizeof(rtattr)'] + name.length;
    const total = attr + ((rtaLength + 3) & ~3);
    const bytes = new ArrayBuffer(total);
    const u8 = new Uint8Array(bytes);
    // Typed arrays store in the host's order: the test holds on either kind of host.
    const u32 = (at: number, v: number): void => void new Uint32Array(bytes, at, 1).set([v]);
    const u16 = (at: number, v: number): void => void new Uint16Array(bytes, at, 1).set([v]);
    u32(c['nlmsghdr.nlmsg_len'], total);
    u16(c['nlmsghdr.nlmsg_type'], c.RTM_NEWLINK);
    u32(c['nlmsghdr.nlmsg_seq'], 0x01020304);
    u8[ifinfo + c['ifinfomsg.ifi_family']] = c.AF_UNSPEC;
    new Int32Array(bytes, ifinfo + c['ifinfomsg.ifi_index'], 1).set([0x010203]);
    u32(ifinfo + c['ifinfomsg.ifi_flags'], c.IFF_UP | c.IFF_MULTICAST);
    u16(attr + c['rtattr.rta_len'], rtaLength);
    u16(attr + c['rtattr.rta_type'], c.IFLA_IFNAME);
    u8.set(name, attr + c['sizeof(rtattr)']);
    expect(parseMessages(Buffer.from(bytes))).toEqual([{ kind: 'link', deleted: false, index: 0x010203, name: 'hostorder0', flags: c.IFF_UP | c.IFF_MULTICAST }]);
  });
});

describeRoot('links and addresses that come and go (hostPair; a new veth pair between a and b)', () => {
  const topo = useTopology(() => hostPair());

  test('added, up, changed (carrier), address added and removed, down, removed: each one event, in order', async () => {
    const a = topo.ns('a');
    const b = topo.ns('b');
    await using watcher = watch({ netns: a });
    const rec = new Recorder(watcher);
    const iterated: InterfaceEvent[] = [];
    const iterating = (async () => {
      for await (const e of watcher) iterated.push(e);
    })();

    ip(['link', 'add', 'w1', 'index', '40', 'netns', a, 'type', 'veth', 'peer', 'name', 'w1', 'index', '41', 'netns', b]);
    const added = await rec.next('w1 added', isLink('added', 'w1'));
    expect(added).toEqual({ kind: 'link', type: 'added', index: 40, name: 'w1', flags: expect.objectContaining({ up: false, multicast: true, loopback: false }) });
    expect(watcher.list().find((l) => l.index === 40)?.name).toBe('w1');

    ip(['-n', a, 'link', 'set', 'w1', 'up']);
    const up = await rec.next('w1 up', isLink('up', 'w1'));
    expect(up.flags).toMatchObject({ up: true, running: false });
    // The peer comes up: carrier, so 'running' changes (not 'up' again).
    ip(['-n', b, 'link', 'set', 'w1', 'up']);
    const carrier = await rec.next('w1 changed', isLink('changed', 'w1'));
    expect(carrier.flags).toMatchObject({ up: true, running: true });

    ip(['-n', a, 'addr', 'add', '2001:db8:77::1/64', 'dev', 'w1', 'nodad']);
    ip(['-n', a, 'addr', 'add', '192.0.2.77/24', 'dev', 'w1']);
    expect(await rec.next('v6 address added', isAddress('added', '2001:db8:77::1'))).toEqual({
      kind: 'address',
      type: 'added',
      index: 40,
      name: 'w1',
      address: '2001:db8:77::1',
      prefixLength: 64,
      family: 6,
    });
    expect(await rec.next('v4 address added', isAddress('added', '192.0.2.77'))).toMatchObject({ index: 40, name: 'w1', prefixLength: 24, family: 4 });
    expect(watcher.addresses()).toContainEqual({ index: 40, name: 'w1', address: '2001:db8:77::1', prefixLength: 64, family: 6 });

    ip(['-n', a, 'addr', 'del', '2001:db8:77::1/64', 'dev', 'w1']);
    expect(await rec.next('v6 address removed', isAddress('removed', '2001:db8:77::1'))).toMatchObject({ index: 40, name: 'w1', prefixLength: 64 });

    ip(['-n', a, 'link', 'set', 'w1', 'down']);
    expect((await rec.next('w1 down', isLink('down', 'w1'))).flags.up).toBe(false);

    ip(['-n', a, 'link', 'del', 'w1']);
    // The IPv4 address goes with the link (the kernel says so before the link itself).
    await rec.next('v4 address removed', isAddress('removed', '192.0.2.77'));
    const removed = await rec.next('w1 removed', isLink('removed', 'w1'));
    expect(removed.index).toBe(40);
    expect(watcher.list().some((l) => l.index === 40)).toBe(false);
    expect(watcher.addresses().some((x) => x.index === 40)).toBe(false);

    // Each change once: the repeated RTM_NEWLINKs the kernel sends along the way are not events.
    const w1 = rec.events.filter((e) => e.kind === 'link' && e.name === 'w1').map((e) => e.type);
    expect(w1).toEqual(['added', 'up', 'changed', 'down', 'removed']);
    await watcher.close();
    await iterating;
    expect(iterated).toEqual(rec.events);
  });

  test('two watchers of different namespaces each see only their own side', async () => {
    await using wa = watch({ netns: topo.ns('a') });
    await using wb = watch({ netns: topo.ns('b') });
    const ra = new Recorder(wa);
    const rb = new Recorder(wb);
    ip(['-n', topo.ns('b'), 'addr', 'add', '2001:db8:78::2/64', 'dev', 'eth0', 'nodad']);
    await rb.next('address on b', isAddress('added', '2001:db8:78::2'));
    ip(['-n', topo.ns('b'), 'addr', 'del', '2001:db8:78::2/64', 'dev', 'eth0']);
    await rb.next('address gone on b', isAddress('removed', '2001:db8:78::2'));
    expect(ra.events.filter((e) => e.kind === 'address')).toEqual([]);
  });

  test('an overrun (ENOBUFS) is resynced: the differences come as events, once each, then "resync"', async () => {
    const a = topo.ns('a');
    // The smallest receive buffer the kernel allows holds a notification or two.
    await using watcher = watch({ netns: a, receiveBufferSize: 1 });
    const rec = new Recorder(watcher);
    ip(['link', 'add', 'w2', 'index', '42', 'netns', a, 'type', 'veth', 'peer', 'name', 'w2', 'index', '43', 'netns', topo.ns('b')]);
    const want = Array.from({ length: 200 }, (_, i) => `2001:db8:79::${(i + 1).toString(16)}`);
    // One synchronous batch: nothing is read while the kernel queues 200 notifications.
    ip(['-n', a, '-batch', '-'], ['link set w2 up', ...want.map((x) => `addr add ${x}/64 dev w2 nodad`)].join('\n') + '\n');
    const onW2 = (): string[] => watcher.addresses().filter((x) => x.index === 42 && x.address.startsWith('2001:db8:79:')).map((x) => x.address);
    await rec.until('all 200 addresses known', () => rec.resyncs > 0 && onW2().length === 200);
    const added = rec.events.filter((e): e is AddressEvent => e.kind === 'address' && e.type === 'added' && e.address.startsWith('2001:db8:79:'));
    expect(added.map((e) => e.address).sort()).toEqual([...want].sort());
    // The link: 'added' then 'up' if both notifications got through, or a single 'added'
    // already up if the resync found it so. Either way it ends up, as it is.
    const w2 = rec.events.filter((e): e is LinkEvent => e.kind === 'link' && e.name === 'w2');
    expect(w2.map((e) => e.type)).toEqual(w2[0].flags.up ? ['added'] : ['added', 'up']);
    expect(watcher.list().find((l) => l.name === 'w2')?.flags.up).toBe(true);
    // What the watcher holds is what the kernel holds.
    const kernel = list({ netns: a }).find((i) => i.name === 'w2')!;
    expect(onW2().sort()).toEqual(kernel.global.map((x) => x.address).sort());

    // And back: everything removed in one go, again faster than it is read.
    ip(['-n', a, 'link', 'del', 'w2']);
    await rec.next('w2 removed', isLink('removed', 'w2'));
    const removed = rec.events.filter((e) => e.kind === 'address' && e.type === 'removed' && e.address.startsWith('2001:db8:79:'));
    expect(removed.length).toBe(200);
    expect(onW2()).toEqual([]);
  });
});
