/**
 * Memory under load: one ip6sock receiver (MulticastSocket when the library has it, else
 * UdpSocket unicast) stays up while the C blaster sends until it has received `soakPackets`
 * 64-byte datagrams. RSS is read after every chunk; the growth is the last reading minus
 * the first (taken after the first chunk, so start-up allocations are not counted).
 * @packageDocumentation
 */
import { hostPair } from '../../packages/testbed/src';
import { multicastSocket } from '../ip6sock';
import { counterReport, mb, num, RECEIVE_BUFFER, Row, RowBase, Scenario, ScenarioResult, timeoutFor, withPeer } from '../runner';
import { RECEIVE_GROUP } from './receive';

const PORT = 7023;
const SIZE = 64;
/** Growth allowed over 10 million packets (the target). */
const TARGET_MB = 10;

export const soak: Scenario = {
  name: 'soak',
  title: 'Memory: RSS of one ip6sock receiver over many received packets',
  async run(ctx): Promise<ScenarioResult> {
    const total = ctx.options.soakPackets;
    // Ten readings at least, and chunks of at most 1,000,000 packets.
    const chunk = Math.max(1, Math.min(1_000_000, Math.ceil(total / 10)));
    const mc = multicastSocket();
    const impl = mc.ok ? 'ip6sock MulticastSocket' : 'ip6sock UdpSocket';
    const topo = await hostPair();
    const dst = mc.ok ? RECEIVE_GROUP : topo.address('b');
    const base: RowBase = {
      case: `${SIZE} B, ${total.toLocaleString('en')} packets received`,
      impl,
      kind: 'ip6sock',
      metric: 'RSS growth',
      unit: 'MB',
      better: 'lower',
    };
    let row: Row;
    try {
      const rxArgs = [
        ...(mc.ok ? ['--impl', 'ip6sock-multicast', '--group', RECEIVE_GROUP, '--ifname', 'eth0'] : ['--impl', 'ip6sock']),
        ...['--port', PORT, '--rcvbuf', RECEIVE_BUFFER],
      ];
      const blasterArgv = [ctx.bin.blaster, '--dst', dst, '--port', String(PORT), '--size', String(SIZE), '--ifname', 'eth0', '--connect'];
      row = await withPeer(topo, 'b', ctx.node('receiver', rxArgs), { label: impl, cpu: ctx.cpu.measured }, (rx) =>
        withPeer(topo, 'a', blasterArgv, { label: 'C blaster', cpu: ctx.cpu.traffic }, async (blaster) => {
          const readings: Array<{ received: number; rssKb: number }> = [];
          let sent = 0;
          // Bounded: drops mean more must be sent than received, but never more than 20x.
          while ((readings.at(-1)?.received ?? 0) < total && sent < 20 * total) {
            sent += num(await blaster.request(`send ${chunk}`, timeoutFor(chunk)), 'sent');
            const report = counterReport(await rx.request('report 300 10000', 15_000));
            readings.push({ received: report.received, rssKb: report.rssKb });
            ctx.log(`  soak: ${report.received.toLocaleString('en')} received, RSS ${mb(report.rssKb).toFixed(1)} MB`);
          }
          const last = readings.at(-1);
          if (last === undefined || last.received < total) {
            throw new Error(`only ${last?.received ?? 0} of ${total} packets arrived after sending ${sent}`);
          }
          const growth = mb(last.rssKb - readings[0].rssKb);
          return {
            ...base,
            status: 'ok',
            value: growth,
            runs: [growth],
            details: {
              received: last.received,
              sent,
              readings: readings.length,
              rssFirstMB: mb(readings[0].rssKb),
              rssLastMB: mb(last.rssKb),
              rssMaxMB: mb(Math.max(...readings.map((r) => r.rssKb))),
            },
          } satisfies Row;
        }),
      );
    } catch (err) {
      row = { ...base, status: 'failed', reason: err instanceof Error ? err.message : String(err) };
    } finally {
      await topo.destroy();
    }
    const scaled = row.status === 'ok' && row.value !== undefined ? (row.value * 10_000_000) / total : undefined;
    return {
      rows: [row],
      targets: [
        scaled === undefined
          ? { name: 'RSS growth over 10,000,000 received packets', want: `< ${TARGET_MB} MB`, got: row.reason ?? 'no measurement', status: 'not available' }
          : {
              name: 'RSS growth over 10,000,000 received packets',
              want: `< ${TARGET_MB} MB`,
              got: total >= 10_000_000 ? `${scaled.toFixed(1)} MB` : `${row.value?.toFixed(1)} MB over ${total.toLocaleString('en')} (not the full count)`,
              status: total < 10_000_000 ? 'not available' : scaled < TARGET_MB ? 'met' : 'missed',
            },
      ],
      notes: [`one run (a soak, not a median): RSS read after every ${chunk.toLocaleString('en')} packets sent`],
    };
  },
};
