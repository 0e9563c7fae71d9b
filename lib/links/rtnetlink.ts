/**
 * rtnetlink messages, decoded: what an interface watcher reads from a NETLINK_ROUTE socket
 * (RTM_NEWLINK / RTM_DELLINK with ifinfomsg, RTM_NEWADDR / RTM_DELADDR with ifaddrmsg, and
 * the NLMSG_DONE / NLMSG_ERROR control messages of a request), and the IFF_* bits of a link.
 * Struct sizes and field offsets come from the system headers through native().constants,
 * as every option number does; nothing here is a hand-computed offset.
 * @internal
 * @packageDocumentation
 */
import * as os from 'node:os';
import { stateError } from '../errors';
import type { InterfaceFlags } from './types';
import { formatIpv6 } from '../codec/ipv6addr';
import { constants } from '../core/native';

/** A link appeared, changed or went away (RTM_NEWLINK / RTM_DELLINK of family AF_UNSPEC). */
export interface LinkMessage {
  kind: 'link';
  /** RTM_DELLINK. */
  deleted: boolean;
  index: number;
  /** IFLA_IFNAME ('' if the message had none). */
  name: string;
  /** ifi_flags: the IFF_* bits. */
  flags: number;
}

/** An address was added or removed (RTM_NEWADDR / RTM_DELADDR). */
export interface AddressMessage {
  kind: 'address';
  /** RTM_DELADDR. */
  deleted: boolean;
  index: number;
  family: 4 | 6;
  /** The local address (IFA_LOCAL, else IFA_ADDRESS), canonical text. */
  address: string;
  prefixLength: number;
}

/** NLMSG_ERROR: `errno` 0 is an acknowledgement, otherwise the positive errno of the request `seq`. */
export interface ErrorMessage {
  kind: 'error';
  errno: number;
  seq: number;
}

/** NLMSG_DONE: the end of a multipart (dump) answer; `interrupted` when the kernel flagged it inconsistent. */
export interface DoneMessage {
  kind: 'done';
  seq: number;
  interrupted: boolean;
}

export type NetlinkMessage = LinkMessage | AddressMessage | ErrorMessage | DoneMessage;

/**
 * Integers as the host stores them. Netlink carries them in host byte order (and so do the
 * addon's receive records), not network order: read little-endian on a little-endian host
 * and big-endian on a big-endian one.
 */
const LITTLE_ENDIAN = os.endianness() === 'LE';
export const hostOrder = {
  u16: (b: Buffer, at: number): number => (LITTLE_ENDIAN ? b.readUInt16LE(at) : b.readUInt16BE(at)),
  u32: (b: Buffer, at: number): number => (LITTLE_ENDIAN ? b.readUInt32LE(at) : b.readUInt32BE(at)),
  i32: (b: Buffer, at: number): number => (LITTLE_ENDIAN ? b.readInt32LE(at) : b.readInt32BE(at)),
} as const;

/** NLMSG_ALIGN / RTA_ALIGN. */
function align(n: number, to: number): number {
  return (n + to - 1) & ~(to - 1);
}

/** The attributes of one message, type -> payload view (the last one of a type wins). */
function attributes(buf: Buffer, start: number, end: number): Map<number, Buffer> {
  const c = constants();
  const found = new Map<number, Buffer>();
  const header = c['sizeof(rtattr)'];
  let at = start;
  while (at + header <= end) {
    const len = hostOrder.u16(buf, at + c['rtattr.rta_len']);
    if (len < header || at + len > end) throw malformed(`attribute length ${len} at byte ${at}`);
    // The nested and byte-order flag bits are not part of the type.
    const type = hostOrder.u16(buf, at + c['rtattr.rta_type']) & c.NLA_TYPE_MASK;
    found.set(type, buf.subarray(at + align(header, c.RTA_ALIGNTO), at + len));
    at += align(len, c.RTA_ALIGNTO);
  }
  return found;
}

function malformed(what: string): Error {
  return stateError('ERR_NETLINK_MALFORMED', `malformed netlink message: ${what}`);
}

function cString(b: Buffer | undefined): string {
  if (b === undefined) return '';
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}

function addressText(b: Buffer, family: 4 | 6): string | undefined {
  if (family === 6) return b.length === 16 ? formatIpv6(b) : undefined;
  return b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : undefined;
}

/**
 * Decodes every message in one datagram read from a NETLINK_ROUTE socket. A datagram may
 * hold several messages (the parts of a dump carry NLM_F_MULTI and end with NLMSG_DONE);
 * each is walked by its own length. Messages of other types, links of other families
 * (the bridge's AF_BRIDGE port notifications also travel in RTMGRP_LINK) and addresses of
 * other families are skipped. Throws ERR_NETLINK_MALFORMED when a length does not fit.
 */
export function parseMessages(buf: Buffer): NetlinkMessage[] {
  const c = constants();
  const out: NetlinkMessage[] = [];
  const hdrlen = c.NLMSG_HDRLEN;
  let at = 0;
  while (at + hdrlen <= buf.length) {
    const len = hostOrder.u32(buf, at + c['nlmsghdr.nlmsg_len']);
    if (len < hdrlen || at + len > buf.length) throw malformed(`message length ${len} at byte ${at} of ${buf.length}`);
    const type = hostOrder.u16(buf, at + c['nlmsghdr.nlmsg_type']);
    const flags = hostOrder.u16(buf, at + c['nlmsghdr.nlmsg_flags']);
    const seq = hostOrder.u32(buf, at + c['nlmsghdr.nlmsg_seq']);
    const body = at + hdrlen;
    const end = at + len;
    if (type === c.NLMSG_DONE) {
      out.push({ kind: 'done', seq, interrupted: (flags & c.NLM_F_DUMP_INTR) !== 0 });
    } else if (type === c.NLMSG_ERROR) {
      if (body + c['sizeof(nlmsgerr)'] > end && body + 4 > end) throw malformed('short NLMSG_ERROR');
      out.push({ kind: 'error', errno: -hostOrder.i32(buf, body + c['nlmsgerr.error']), seq });
    } else if (type === c.RTM_NEWLINK || type === c.RTM_DELLINK) {
      const size = c['sizeof(ifinfomsg)'];
      if (body + size > end) throw malformed('short ifinfomsg');
      if (buf[body + c['ifinfomsg.ifi_family']] === c.AF_UNSPEC) {
        const attrs = attributes(buf, body + align(size, c.NLMSG_ALIGNTO), end);
        out.push({
          kind: 'link',
          deleted: type === c.RTM_DELLINK,
          index: hostOrder.i32(buf, body + c['ifinfomsg.ifi_index']),
          name: cString(attrs.get(c.IFLA_IFNAME)),
          flags: hostOrder.u32(buf, body + c['ifinfomsg.ifi_flags']),
        });
      }
    } else if (type === c.RTM_NEWADDR || type === c.RTM_DELADDR) {
      const size = c['sizeof(ifaddrmsg)'];
      if (body + size > end) throw malformed('short ifaddrmsg');
      const af = buf[body + c['ifaddrmsg.ifa_family']];
      const family = af === c.AF_INET6 ? 6 : af === c.AF_INET ? 4 : 0;
      if (family !== 0) {
        const attrs = attributes(buf, body + align(size, c.NLMSG_ALIGNTO), end);
        // On a point-to-point link IFA_ADDRESS is the peer and IFA_LOCAL our end; otherwise
        // IPv6 sends only IFA_ADDRESS and IPv4 both, equal.
        const raw = attrs.get(c.IFA_LOCAL) ?? attrs.get(c.IFA_ADDRESS);
        const address = raw === undefined ? undefined : addressText(raw, family);
        if (address !== undefined) {
          out.push({
            kind: 'address',
            deleted: type === c.RTM_DELADDR,
            index: hostOrder.u32(buf, body + c['ifaddrmsg.ifa_index']),
            family,
            address,
            prefixLength: buf[body + c['ifaddrmsg.ifa_prefixlen']],
          });
        }
      }
    }
    at += align(len, c.NLMSG_ALIGNTO);
  }
  return out;
}

/** The IFF_* bits of a link, by name. */
export function linkFlags(bits: number): InterfaceFlags {
  const c = constants();
  return {
    up: (bits & c.IFF_UP) !== 0,
    running: (bits & c.IFF_RUNNING) !== 0,
    multicast: (bits & c.IFF_MULTICAST) !== 0,
    loopback: (bits & c.IFF_LOOPBACK) !== 0,
    broadcast: (bits & c.IFF_BROADCAST) !== 0,
    pointToPoint: (bits & c.IFF_POINTOPOINT) !== 0,
  };
}
