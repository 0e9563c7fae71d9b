// Delivery that listeners cannot break, and sockets that stop reading when nobody reads.
// A listener that throws costs its own call only: the datagrams and events after it are
// delivered, every error reaches 'uncaughtException', and the counters stay true. The
// shared link watcher survives one socket's bug and heals after a failure. A socket whose
// last reader went away leaves datagrams in the kernel and can be collected.
//
// Listeners here throw on purpose, so each case runs in a child process (on dist/, the
// compiled library) that counts what reaches 'uncaughtException' and prints its findings.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { record } from '../stress/fuzz/record';
import { describeRoot } from '../helpers/privileged';
import { hostPair, useTopology } from '../helpers/topology';

const ENTRY = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');

/** Common head of every child: the library, a bounded wait, and uncaught errors counted by message. */
const PRELUDE = `
  const lib = require(${JSON.stringify(ENTRY)});
  const { execFileSync } = require('node:child_process');
  const uncaught = {};
  process.on('uncaughtException', (err) => {
    uncaught[err.message] = (uncaught[err.message] || 0) + 1;
    if (!String(err.message).startsWith('listener bug')) { console.error(err); process.exit(3); }
  });
  const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const tick = () => new Promise((r) => setImmediate(r));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  async function until(what, cond, ms = 5000) {
    for (let waited = 0; !cond(); waited += 10) {
      if (waited >= ms) throw new Error('not within ' + ms + ' ms: ' + what);
      await sleep(10);
    }
  }
  const done = (out) => { console.log(JSON.stringify({ ...out, uncaught })); process.exit(0); };
  process.on('unhandledRejection', (err) => { console.error(err); process.exit(4); });
`;

/** Runs `body` (an async function's body, with `args`) in a child; resolves with its JSON output. */
function child<T>(body: string, args: string[], flags: string[] = [], wrap = (argv: string[]): string[] => argv): Promise<T> {
  const script = `${PRELUDE}\n(async () => { const argv = process.argv.slice(1); ${body} })();`;
  const argv = wrap([process.execPath, ...flags, '-e', script, ...args]);
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 40_000);
    p.on('close', (status, signal) => {
      clearTimeout(timer);
      if (status !== 0) return reject(new Error(`child exited ${status ?? signal}: ${stderr}${stdout}`));
      try {
        resolve(JSON.parse(stdout) as T);
      } catch {
        reject(new Error(`child printed no result: ${stderr}${stdout}`));
      }
    });
  });
}

describeRoot('a listener that throws costs its own call only (hostPair)', () => {
  const topo = useTopology(() => hostPair());

  test("'message' throwing on every 4th of 1,000 datagrams: the other 750 delivered, 250 uncaught, stats true; iterators and 'batch' get all", async () => {
    const out = await child<{ calls: number; clean: number; items: number; batched: number; received: number; kernelDrops: number; uncaught: Record<string, number> }>(
      `
      const [rxNs, txNs] = argv;
      const rx = new lib.UdpSocket({ netns: rxNs, address: '2001:db8:1::2', port: 7401, receiveBufferSize: 1 << 20 });
      const tx = new lib.UdpSocket({ netns: txNs });
      let calls = 0, clean = 0, items = 0, batched = 0;
      rx.on('message', (data) => {
        calls++;
        if (data.readUInt32BE(0) % 4 === 3) throw new Error('listener bug: message');
        clean++;
      });
      // A 'batch' listener that throws every time still gets every read.
      rx.on('batch', (batch) => { batched += batch.length; throw new Error('listener bug: batch'); });
      const iterating = (async () => { for await (const m of rx) if (++items === 1000) break; })();
      for (let i = 0; i < 1000; i += 25) {
        const sends = [];
        for (let k = i; k < i + 25; k++) {
          const b = Buffer.alloc(64);
          b.writeUInt32BE(k, 0);
          sends.push(tx.send(b, { address: '2001:db8:1::2', port: 7401 }));
        }
        await Promise.all(sends);
        await tick();
      }
      await until('1,000 delivered', () => calls === 1000 && items === 1000 && batched === 1000);
      await iterating;
      const { received, kernelDrops } = rx.stats;
      await tick();
      await rx.close(); await tx.close();
      done({ calls, clean, items, batched, received, kernelDrops });
      `,
      [topo.ns('b'), topo.ns('a')],
    );
    expect(out.kernelDrops).toBe(0);
    expect(out).toMatchObject({ calls: 1000, clean: 750, items: 1000, batched: 1000, received: 1000 });
    expect(out.uncaught['listener bug: message']).toBe(250);
    // One 'batch' call per read, each one throwing.
    expect(out.uncaught['listener bug: batch']).toBeGreaterThan(0);
    record('delivery', { test: 'throwing message listener', ...out });
  }, 60_000);

  test('watcher listeners that throw cost no events and no state: a counting listener sees all, list() and addresses() match ip', async () => {
    const out = await child<{ links: string[]; addresses: string[]; links2: string[]; listed: string[]; kernelLinks: string[]; watched: string[]; kernel: string[] }>(
      `
      const [ns, peerNs] = argv;
      const watcher = lib.interfaces.watch({ netns: ns });
      const links = [], addresses = [], links2 = [];
      watcher.on('link', (e) => { throw new Error('listener bug: link'); });
      watcher.on('link', (e) => { if (e.name === 'd1') links.push(e.type); });
      watcher.on('address', (e) => { throw new Error('listener bug: address'); });
      watcher.on('address', (e) => { if (e.address.startsWith('2001:db8:55:')) addresses.push(e.type + ' ' + e.address); });
      // A second watcher of the same namespace, unaffected either way.
      const other = lib.interfaces.watch({ netns: ns });
      other.on('link', (e) => { if (e.name === 'd1') links2.push(e.type); });
      ip('link', 'add', 'd1', 'index', '61', 'netns', ns, 'type', 'veth', 'peer', 'name', 'd1', 'index', '62', 'netns', peerNs);
      ip('-n', ns, 'link', 'set', 'd1', 'up');
      ip('-n', ns, 'link', 'set', 'd1', 'down');
      ip('-n', ns, 'addr', 'add', '2001:db8:55::1/64', 'dev', 'd1', 'nodad');
      ip('-n', ns, 'addr', 'add', '2001:db8:55::2/64', 'dev', 'd1', 'nodad');
      ip('-n', ns, 'link', 'set', 'd1', 'up');
      await until('events', () => addresses.length === 2 && links.length === 4 && links2.length === 4);
      const listed = watcher.list().map((l) => l.index + ' ' + l.name + ' ' + l.flags.up);
      const kernelLinks = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' }))
        .map((l) => l.ifindex + ' ' + l.ifname + ' ' + l.flags.includes('UP')).sort();
      const watched = watcher.addresses().filter((a) => a.family === 6 && a.address.startsWith('2001:db8:55:')).map((a) => a.address + '/' + a.prefixLength).sort();
      const kernel = JSON.parse(execFileSync('ip', ['-n', ns, '-j', '-6', 'addr', 'show', 'dev', 'd1'], { encoding: 'utf8' }))[0].addr_info
        .filter((a) => a.local.startsWith('2001:db8:55:')).map((a) => a.local + '/' + a.prefixlen).sort();
      ip('-n', ns, 'link', 'del', 'd1');
      await until('removal', () => links.length === 6 && links2.length === 6);
      await watcher.close(); await other.close();
      done({ links, addresses, links2, listed: listed.sort(), kernelLinks, watched, kernel });
      `,
      [topo.ns('a'), topo.ns('b')],
    );
    // Deleting a link that is up takes it down first.
    expect(out.links).toEqual(['added', 'up', 'down', 'up', 'down', 'removed']);
    expect(out.links2).toEqual(out.links);
    // Added, then removed with the link.
    expect(out.addresses.slice(0, 2)).toEqual(['added 2001:db8:55::1', 'added 2001:db8:55::2']);
    expect(out.addresses.slice(2).sort()).toEqual(['removed 2001:db8:55::1', 'removed 2001:db8:55::2']);
    expect(out.listed).toEqual(out.kernelLinks);
    expect(out.watched).toEqual(['2001:db8:55::1/64', '2001:db8:55::2/64']);
    expect(out.watched).toEqual(out.kernel);
    record('delivery', { test: 'throwing watcher listeners', ...out });
  }, 60_000);

  test("a throwing 'membership' listener on one socket: another socket bound to the removed device still gets its ENODEV", async () => {
    const out = await child<{ membership: number; code: string; uncaught: Record<string, number> }>(
      `
      const [ns, peerNs] = argv;
      ip('link', 'add', 'd2', 'index', '63', 'netns', ns, 'type', 'veth', 'peer', 'name', 'd2', 'index', '64', 'netns', peerNs);
      ip('-n', ns, 'link', 'set', 'd2', 'up');
      const m = new lib.MulticastSocket({ netns: ns, port: 7402 });
      m.join('ff02::1:77', { interface: 'all' });
      let membership = 0;
      m.on('membership', () => { membership++; throw new Error('listener bug: membership'); });
      const u = new lib.UdpSocket({ netns: ns, device: 'd2' });
      const code = new Promise((resolve) => u.on('error', (err) => resolve(err.code)));
      ip('-n', ns, 'link', 'del', 'd2');
      const got = await Promise.race([code, sleep(5000).then(() => 'none within 5 s')]);
      await m.close(); await u.close();
      done({ membership, code: got });
      `,
      [topo.ns('a'), topo.ns('b')],
    );
    expect(out).toMatchObject({ membership: 1, code: 'ENODEV' });
    expect(out.uncaught['listener bug: membership']).toBe(1);
  }, 60_000);

  test('datagrams sent while nobody listens wait in the kernel for the next listener, also the rest of a read a once() listener left', async () => {
    const out = await child<{ first: number[]; once: number[]; later: number[]; receivedBetween: number; received: number; kernelDrops: number }>(
      `
      const [rxNs, txNs] = argv;
      const rx = new lib.UdpSocket({ netns: rxNs, address: '2001:db8:1::2', port: 7403 });
      const tx = new lib.UdpSocket({ netns: txNs });
      const send = async (from, n) => {
        const sends = [];
        for (let k = from; k < from + n; k++) { const b = Buffer.alloc(8); b.writeUInt32BE(k, 0); sends.push(tx.send(b, { address: '2001:db8:1::2', port: 7403 })); }
        await Promise.all(sends);
      };
      const first = [];
      const onFirst = (d) => first.push(d.readUInt32BE(0));
      rx.on('message', onFirst);
      await send(0, 5);
      await until('first 5', () => first.length === 5);
      rx.off('message', onFirst);
      // Nobody listens: these wait in the kernel, and nothing counts them.
      await send(5, 20);
      await sleep(100);
      const receivedBetween = rx.stats.received;
      // One read takes all 20; once() has the first, the other 19 wait for the next listener.
      const once = [];
      rx.once('message', (d) => once.push(d.readUInt32BE(0)));
      await until('once', () => once.length === 1);
      await sleep(100);
      const later = [];
      rx.on('message', (d) => later.push(d.readUInt32BE(0)));
      await send(25, 5);
      await until('the rest', () => later.length === 24);
      const { received, kernelDrops } = rx.stats;
      await rx.close(); await tx.close();
      done({ first, once, later, receivedBetween, received, kernelDrops });
      `,
      [topo.ns('b'), topo.ns('a')],
    );
    const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
    expect(out.kernelDrops).toBe(0);
    expect(out.first).toEqual(range(0, 5));
    expect(out.receivedBetween).toBe(5);
    expect(out.once).toEqual([5]);
    expect(out.later).toEqual(range(6, 24));
    expect(out.received).toBe(30);
  }, 60_000);

  test('1,000 sockets listened and unlistened (off(), once() fired, for await broken out of), then dropped: fds back after gc', async () => {
    const out = await child<{ before: number; during: number; after: number }>(
      `
      const fs = require('node:fs');
      const [rxNs, txNs] = argv;
      const isSocket = (fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd).startsWith('socket:'); } catch { return false; } };
      const fds = () => fs.readdirSync('/proc/self/fd').filter(isSocket).length;
      const collect = async () => { for (let i = 0; i < 10; i++) { global.gc(); await tick(); } };
      const tx = new lib.UdpSocket({ netns: txNs });
      await collect();
      const before = fds();
      await (async () => {
        const fired = [];
        for (let i = 0; i < 1000; i++) {
          const s = new lib.UdpSocket({ netns: rxNs, address: '2001:db8:1::2' });
          if (i % 10 === 0) {
            // once(), fired by a datagram.
            fired.push(new Promise((resolve) => s.once('message', resolve)));
            await tx.send('x', { address: '2001:db8:1::2', port: s.address().port });
          } else if (i % 10 === 1) {
            const it = s[Symbol.asyncIterator]();
            await it.return();
          } else {
            const l = () => undefined;
            s.on('message', l);
            s.on('batch', l);
            s.off('message', l);
            s.off('batch', l);
          }
        }
        await Promise.all(fired);
      })();
      const during = fds();
      await collect();
      const after = fds();
      await tx.close();
      done({ before, during, after });
      `,
      [topo.ns('b'), topo.ns('a')],
      ['--expose-gc'],
    );
    expect(out.during).toBe(out.before + 1000);
    expect(out.after).toBe(out.before);
    record('delivery', { test: 'readers gone, sockets dropped', ...out });
  }, 60_000);

  test('the shared link watcher heals: an overrun met with no fd free (EMFILE) is a warning, and after fds are free again a device removal is still reported', async () => {
    const out = await child<{ warning: string; warnings: number; code: string }>(
      `
      const fs = require('node:fs');
      const [ns, peerNs] = argv;
      ip('link', 'add', 'd3', 'index', '65', 'netns', ns, 'type', 'veth', 'peer', 'name', 'd3', 'index', '66', 'netns', peerNs);
      ip('-n', ns, 'link', 'set', 'd3', 'up');
      const u = new lib.UdpSocket({ netns: ns, device: 'd3' });
      const warnings = [];
      u.on('warning', (w) => warnings.push(w.code));
      const code = new Promise((resolve) => u.on('error', (err) => resolve(err.code)));
      // Far more notifications than the watcher's receive buffer holds, while this process
      // reads nothing: the next read of the watcher fails with ENOBUFS (an overrun).
      const lines = [];
      for (let i = 1; i <= 3000; i++) lines.push('addr add 2001:db8:66::' + i.toString(16) + '/64 dev d3 nodad');
      execFileSync('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\\n') + '\\n', stdio: ['pipe', 'ignore', 'pipe'] });
      // And no fd left for the fresh socket and listing the resync needs.
      const held = [];
      try { for (let i = 0; i < 100000; i++) held.push(fs.openSync('/dev/null', 'r')); } catch (err) { if (err.code !== 'EMFILE') throw err; }
      await until('a warning', () => warnings.length > 0);
      // Fds back; the watcher retries by itself. The device goes while it may still be down.
      for (const fd of held) fs.closeSync(fd);
      ip('-n', ns, 'link', 'del', 'd3');
      const got = await Promise.race([code, sleep(10000).then(() => 'none within 10 s')]);
      await u.close();
      done({ warning: warnings[0], warnings: warnings.length, code: got });
      `,
      [topo.ns('a'), topo.ns('b')],
      [],
      (argv) => ['prlimit', '--nofile=200:200', ...argv],
    );
    expect(out).toMatchObject({ warning: 'EMFILE', warnings: 1, code: 'ENODEV' });
    record('delivery', { test: 'shared watcher EMFILE overrun', ...out });
  }, 60_000);
});
