// The kernel's own MLD and IGMP messages, decoded with the codecs: host a joins and leaves
// groups with a MulticastSocket, host b reads what a's kernel reports to the link through
// a RawSocket (ICMPv6 for MLD, protocol 2 for IGMP), as a multicast router would.
import { igmp, mld, MulticastSocket, RawSocket, type GroupRecord, type MessageInfo } from '../../lib';
import { describeRoot } from '../helpers/privileged';
import { hostPair, useTopology } from '../helpers/topology';
import { nextMessage } from '../helpers/wire';

const A_LINK_LOCAL = 'fe80::1';
const A_IPV4 = '192.0.2.1';

/** The records of one version 2/3 report, as [type name, group, sources]. */
function summary(records: readonly GroupRecord[]): Array<[string, string, string[]]> {
  return records.map((r) => [r.typeName, r.group, r.sources]);
}

/** Whether a report (from anyone but a) is a's. MLD sources carry %eth0. */
const fromA = (info: MessageInfo): boolean => info.address.split('%')[0] === A_LINK_LOCAL || info.address === A_IPV4;

describeRoot('the kernel reports memberships; the codecs decode them (hostPair)', () => {
  const topo = useTopology(() => hostPair());

  /** a's next MLD message that `accept` takes, decoded and with its checksum verified. */
  function nextMld(listener: RawSocket, accept: (m: mld.MldMessage) => boolean): Promise<[mld.MldMessage, MessageInfo]> {
    const decodeWithChecksum = (data: Buffer, info: MessageInfo): mld.MldMessage => mld.decode(data, { source: info.address.split('%')[0], destination: info.destination ?? '' });
    return nextMessage(listener, (data, info) => fromA(info) && accept(decodeWithChecksum(data, info))).then(([data, info]) => [decodeWithChecksum(data, info), info]);
  }

  /** a's next IGMP message that `accept` takes, decoded from the IPv4 packet. */
  function nextIgmp(listener: RawSocket, accept: (m: igmp.IgmpMessage) => boolean): Promise<[igmp.IgmpMessage, MessageInfo]> {
    const decodePacket = (data: Buffer): igmp.IgmpMessage => igmp.decode(igmp.stripIpv4Header(data));
    return nextMessage(listener, (data, info) => fromA(info) && accept(decodePacket(data))).then(([data, info]) => [decodePacket(data), info]);
  }

  const isV2Report = (m: mld.MldMessage): m is mld.MldMessage & { kind: 'report'; version: 2 } => m.kind === 'report' && m.version === 2;
  const isV3Report = (m: igmp.IgmpMessage): m is igmp.IgmpMessage & { kind: 'report'; version: 3 } => m.kind === 'report' && m.version === 3;

  test('MLDv2: an any-source join, a source-specific join, and the leave of both', async () => {
    await using listener = new RawSocket({ protocol: 58, icmpFilter: { pass: ['mldv2-report'] }, netns: topo.ns('b') });
    listener.join('ff02::16', { interface: 'eth0' });
    await using member = new MulticastSocket({ port: 5000, netns: topo.ns('a') });

    const anySource = nextMld(listener, (m) => isV2Report(m) && m.records.some((r) => r.group === 'ff12::5000'));
    member.join('ff12::5000', { interface: 'eth0' });
    const [joined, info] = await anySource;
    expect(info).toMatchObject({ destination: 'ff02::16', hopLimit: 1, interface: { name: 'eth0' } });
    expect(joined).toMatchObject({ kind: 'report', version: 2, type: 143, code: 0, checksumValid: true });
    expect(summary((joined as mld.MldV2Report).records)).toContainEqual(['CHANGE_TO_EXCLUDE_MODE', 'ff12::5000', []]);

    const sourceSpecific = nextMld(listener, (m) => isV2Report(m) && m.records.some((r) => r.group === 'ff3e::8000:1'));
    member.join('ff3e::8000:1', { interface: 'eth0', source: '2001:db8:1::9' });
    const [ssm] = await sourceSpecific;
    expect(ssm.checksumValid).toBe(true);
    expect(summary((ssm as mld.MldV2Report).records)).toContainEqual(['ALLOW_NEW_SOURCES', 'ff3e::8000:1', ['2001:db8:1::9']]);

    const left = nextMld(listener, (m) => isV2Report(m) && m.records.some((r) => r.typeName === 'BLOCK_OLD_SOURCES'));
    const leftAny = nextMld(listener, (m) => isV2Report(m) && m.records.some((r) => r.typeName === 'CHANGE_TO_INCLUDE_MODE'));
    await member.close();
    const [leave] = await left;
    const [leaveAny] = await leftAny;
    expect(summary((leave as mld.MldV2Report).records)).toContainEqual(['BLOCK_OLD_SOURCES', 'ff3e::8000:1', ['2001:db8:1::9']]);
    expect(summary((leaveAny as mld.MldV2Report).records)).toContainEqual(['CHANGE_TO_INCLUDE_MODE', 'ff12::5000', []]);
  });

  test('IGMPv3: an any-source join, a source-specific join, and the leave of both', async () => {
    await using listener = new RawSocket({ family: 4, protocol: igmp.PROTOCOL, netns: topo.ns('b') });
    // Linux hands a raw socket only the multicast it is a member of; reports go to 224.0.0.22.
    listener.join('224.0.0.22', { interface: 'eth0' });
    await using member = new MulticastSocket({ family: 4, port: 5000, netns: topo.ns('a') });

    const anySource = nextIgmp(listener, (m) => isV3Report(m) && m.records.some((r) => r.group === '224.0.1.1'));
    member.join('224.0.1.1', { interface: 'eth0' });
    const [joined, info] = await anySource;
    expect(info).toMatchObject({ address: A_IPV4, destination: '224.0.0.22', hopLimit: 1 });
    expect(joined).toMatchObject({ kind: 'report', version: 3, type: 0x22, checksumValid: true });
    expect(summary((joined as igmp.IgmpV3Report).records)).toContainEqual(['CHANGE_TO_EXCLUDE_MODE', '224.0.1.1', []]);

    const sourceSpecific = nextIgmp(listener, (m) => isV3Report(m) && m.records.some((r) => r.group === '232.1.1.1'));
    member.join('232.1.1.1', { interface: 'eth0', source: '192.0.2.9' });
    const [ssm] = await sourceSpecific;
    expect(ssm.checksumValid).toBe(true);
    expect(summary((ssm as igmp.IgmpV3Report).records)).toContainEqual(['ALLOW_NEW_SOURCES', '232.1.1.1', ['192.0.2.9']]);

    const left = nextIgmp(listener, (m) => isV3Report(m) && m.records.some((r) => r.typeName === 'BLOCK_OLD_SOURCES'));
    const leftAny = nextIgmp(listener, (m) => isV3Report(m) && m.records.some((r) => r.typeName === 'CHANGE_TO_INCLUDE_MODE'));
    await member.close();
    expect(summary(((await left)[0] as igmp.IgmpV3Report).records)).toContainEqual(['BLOCK_OLD_SOURCES', '232.1.1.1', ['192.0.2.9']]);
    expect(summary(((await leftAny)[0] as igmp.IgmpV3Report).records)).toContainEqual(['CHANGE_TO_INCLUDE_MODE', '224.0.1.1', []]);
  });

  test('MLDv1 (force_mld_version 1): the report goes to the group, done to ff02::2', async () => {
    await topo.exec('a', ['sysctl', '-qw', 'net.ipv6.conf.eth0.force_mld_version=1']);
    try {
      await using listener = new RawSocket({ protocol: 58, icmpFilter: { pass: ['mld-report', 'mld-done'] }, netns: topo.ns('b') });
      // Sent to the group itself and to all routers: b listens as a member of both.
      listener.join('ff15::1:5', { interface: 'eth0' });
      listener.join('ff02::2', { interface: 'eth0' });
      await using member = new MulticastSocket({ port: 5000, netns: topo.ns('a') });
      const report = nextMld(listener, (m) => m.kind === 'report' && m.version === 1 && m.group === 'ff15::1:5');
      member.join('ff15::1:5', { interface: 'eth0' });
      const [joined, info] = await report;
      expect(joined).toEqual({ kind: 'report', version: 1, type: 131, code: 0, checksum: expect.any(Number), checksumValid: true, group: 'ff15::1:5' });
      expect(info.destination).toBe('ff15::1:5');
      const done = nextMld(listener, (m) => m.kind === 'done');
      await member.close();
      const [left, doneInfo] = await done;
      expect(left).toMatchObject({ kind: 'done', version: 1, type: 132, group: 'ff15::1:5', checksumValid: true });
      expect(doneInfo.destination).toBe('ff02::2');
    } finally {
      await topo.exec('a', ['sysctl', '-qw', 'net.ipv6.conf.eth0.force_mld_version=0']);
    }
  });

  test('IGMPv2 (force_igmp_version 2): the report goes to the group, leave to 224.0.0.2', async () => {
    await topo.exec('a', ['sysctl', '-qw', 'net.ipv4.conf.eth0.force_igmp_version=2']);
    try {
      await using listener = new RawSocket({ family: 4, protocol: igmp.PROTOCOL, netns: topo.ns('b') });
      listener.join('224.0.1.5', { interface: 'eth0' });
      listener.join('224.0.0.2', { interface: 'eth0' });
      await using member = new MulticastSocket({ family: 4, port: 5000, netns: topo.ns('a') });
      const report = nextIgmp(listener, (m) => m.kind === 'report' && m.version === 2 && m.group === '224.0.1.5');
      member.join('224.0.1.5', { interface: 'eth0' });
      const [joined, info] = await report;
      expect(joined).toEqual({ kind: 'report', version: 2, type: 0x16, checksum: expect.any(Number), checksumValid: true, group: '224.0.1.5' });
      expect(info.destination).toBe('224.0.1.5');
      const leave = nextIgmp(listener, (m) => m.kind === 'leave');
      await member.close();
      const [left, leaveInfo] = await leave;
      expect(left).toMatchObject({ kind: 'leave', version: 2, type: 0x17, group: '224.0.1.5', checksumValid: true });
      expect(leaveInfo.destination).toBe('224.0.0.2');
    } finally {
      await topo.exec('a', ['sysctl', '-qw', 'net.ipv4.conf.eth0.force_igmp_version=0']);
    }
  });

  test('a query encoded here reaches a host, whose kernel answers it with a report', async () => {
    await using member = new MulticastSocket({ port: 5000, netns: topo.ns('a') });
    member.join('ff15::1:7', { interface: 'eth0' });
    await using router = new RawSocket({ protocol: 58, icmpFilter: { pass: ['mldv2-report'] }, netns: topo.ns('b') });
    router.join('ff02::16', { interface: 'eth0' });
    // A group-specific MLDv2 query with a short delay: the answer is a current-state record.
    const answer = nextMld(router, (m) => isV2Report(m) && m.records.some((r) => r.group === 'ff15::1:7' && r.typeName === 'MODE_IS_EXCLUDE'));
    const query = mld.encode({ kind: 'query', group: 'ff15::1:7', maxResponseDelay: 100 });
    await router.send(query, { address: 'ff15::1:7', interface: 'eth0', source: 'fe80::2', hopLimit: 1, hopByHop: [{ type: 5, name: 'routerAlert', routerAlert: 0 }] });
    const [report] = await answer;
    expect(summary((report as mld.MldV2Report).records)).toContainEqual(['MODE_IS_EXCLUDE', 'ff15::1:7', []]);
  });
});
