/**
 * A send whose failure nobody handles: it reaches the socket's 'error' event, as a failed
 * node:dgram send does, instead of an unhandled rejection that ends the process. A send
 * that is awaited (or caught) still rejects, and emits nothing. The failure is a real one:
 * host a of a host pair has no route beyond its link, so the kernel refuses a send to
 * 2001:db8:ff::1 with ENETUNREACH.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { RawSocket, UdpSocket } from '../../lib';
import { describeRoot } from '../helpers/privileged';
import { hostPair, useTopology } from '../helpers/topology';
import { exitOf } from '../helpers/wire';

const UNREACHABLE = '2001:db8:ff::1';
const ENTRY = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');

/** Waits for the end of the tick after next: long enough for an unhandled send failure to be routed. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/** Every 'error' a socket emits, collected. */
function errorsOf(sock: UdpSocket | RawSocket): Error[] {
  const errors: Error[] = [];
  sock.on('error', (err) => errors.push(err));
  return errors;
}

describeRoot('sends nobody awaits', () => {
  const topo = useTopology(() => hostPair());

  test('an awaited send rejects with the coded error and emits no error', async () => {
    await using sock = new UdpSocket({ netns: topo.ns('a') });
    const errors = errorsOf(sock);
    await expect(sock.send('x', { address: UNREACHABLE, port: 9 })).rejects.toMatchObject({ code: 'ENETUNREACH', syscall: 'sendmsg', address: UNREACHABLE, port: 9 });
    const caught = await sock.send('x', { address: UNREACHABLE, port: 9 }).catch((err: Error & { code?: string }) => err.code);
    expect(caught).toBe('ENETUNREACH');
    await settled();
    expect(errors).toEqual([]);
  });

  test("a send nobody awaits fails through 'error', once, with its context", async () => {
    await using sock = new UdpSocket({ netns: topo.ns('a') });
    const errors = errorsOf(sock);
    void sock.send('x', { address: UNREACHABLE, port: 9 });
    await settled();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'ENETUNREACH', address: UNREACHABLE, port: 9 });
  });

  test("sendMany() nobody awaits fails through 'error' too; Promise.all counts as awaiting", async () => {
    await using sock = new UdpSocket({ netns: topo.ns('a') });
    const errors = errorsOf(sock);
    void sock.sendMany([{ data: 'a', address: UNREACHABLE, port: 9 }, { data: 'b', address: UNREACHABLE, port: 10 }]);
    await settled();
    expect(errors.map((e) => (e as Error & { code?: string }).code)).toEqual(['ENETUNREACH']);
    await expect(Promise.all([sock.send('c', { address: UNREACHABLE, port: 9 })])).rejects.toMatchObject({ code: 'ENETUNREACH' });
    await settled();
    expect(errors).toHaveLength(1);
  });

  test("a handler attached after the failure was routed still gets the rejection", async () => {
    await using sock = new UdpSocket({ netns: topo.ns('a') });
    const errors = errorsOf(sock);
    const late = sock.send('x', { address: UNREACHABLE, port: 9 });
    await settled();
    expect(errors).toHaveLength(1);
    await expect(late).rejects.toBe(errors[0]);
  });

  test("bad arguments to a send nobody awaits reach 'error' with their ERR_* code", async () => {
    await using sock = new UdpSocket({ netns: topo.ns('a') });
    const errors = errorsOf(sock);
    void sock.send(42 as never, { address: UNREACHABLE, port: 9 });
    void sock.send('x', { address: 'not an address', port: 9 });
    await settled();
    expect(errors.map((e) => (e as Error & { code?: string }).code)).toEqual(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']);
  });

  test('a closed socket emits nothing for a send nobody awaits; an awaited one rejects ERR_SOCKET_CLOSED', async () => {
    const sock = new UdpSocket({ netns: topo.ns('a') });
    const errors = errorsOf(sock);
    await sock.close();
    void sock.send('x', { address: UNREACHABLE, port: 9 });
    await expect(sock.send('x', { address: UNREACHABLE, port: 9 })).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    await settled();
    expect(errors).toEqual([]);
  });

  test("a RawSocket send nobody awaits fails through 'error'; an awaited one rejects", async () => {
    await using sock = new RawSocket({ protocol: 58, netns: topo.ns('a') });
    const errors = errorsOf(sock);
    const echo = Buffer.from([128, 0, 0, 0, 0, 1, 0, 1]);
    void sock.send(echo, { address: UNREACHABLE });
    await expect(sock.send(echo, { address: UNREACHABLE })).rejects.toMatchObject({ code: 'ENETUNREACH' });
    await settled();
    expect(errors.map((e) => (e as Error & { code?: string }).code)).toEqual(['ENETUNREACH']);
  });

  /**
   * A daemon in a child process: what it prints, and how it ended. Unhandled rejections and
   * uncaught exceptions are reported on stdout, so the test tells them apart.
   */
  async function daemon(body: string): Promise<{ code: number | null; out: string[] }> {
    const script = `
      const { UdpSocket } = require(${JSON.stringify(ENTRY)});
      process.on('unhandledRejection', (err) => { console.log('unhandledRejection ' + err.code); process.exit(3); });
      process.on('uncaughtException', (err) => { console.log('uncaughtException ' + err.code); process.exit(4); });
      const sock = new UdpSocket({ netns: ${JSON.stringify(topo.ns('a'))} });
      const target = { address: ${JSON.stringify(UNREACHABLE)}, port: 9 };
      ${body}
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const [code] = await exitOf(child, 10_000);
    return { code, out: out.trim().split('\n') };
  }

  test("a daemon that fires sends without awaiting them survives ENETUNREACH with an 'error' listener", async () => {
    const r = await daemon(`
      let errors = 0;
      sock.on('error', (err) => { console.log('error ' + err.code); errors++; });
      for (let i = 0; i < 3; i++) void sock.send('x', target);
      setTimeout(() => { console.log('alive ' + errors); sock.close(); }, 200);
    `);
    expect(r).toEqual({ code: 0, out: ['error ENETUNREACH', 'error ENETUNREACH', 'error ENETUNREACH', 'alive 3'] });
  });

  test('a daemon that awaits and catches its sends gets the rejection, and no error event', async () => {
    const r = await daemon(`
      sock.on('error', (err) => console.log('error ' + err.code));
      (async () => {
        try { await sock.send('x', target); } catch (err) { console.log('caught ' + err.code); }
        setTimeout(() => { console.log('alive'); sock.close(); }, 100);
      })();
    `);
    expect(r).toEqual({ code: 0, out: ['caught ENETUNREACH', 'alive'] });
  });

  test("without an 'error' listener, a send nobody awaits stops the daemon as node:dgram's does: an uncaught 'error'", async () => {
    const r = await daemon(`
      void sock.send('x', target);
      setTimeout(() => console.log('still running'), 500);
    `);
    expect(r).toEqual({ code: 4, out: ['uncaughtException ENETUNREACH'] });
  });
});
