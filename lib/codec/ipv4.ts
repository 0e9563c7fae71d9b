/**
 * The IPv4 header (RFC 791) and its Router Alert options (RFC 2113), as an IPv4 router-alert
 * tap receives a packet: header first. The IPv6 counterpart is packet.ts. Pure functions.
 * @packageDocumentation
 */
import { stateError, type CodedError } from '../errors';

/** The fixed part of an IPv4 header and its options (RFC 791). */
export interface Ipv4Header {
  version: 4;
  /** Header length in bytes (IHL * 4). */
  headerLength: number;
  /** Type of service / DSCP + ECN. */
  tos: number;
  totalLength: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Fragment offset in bytes. */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  source: string;
  destination: string;
  /** The option bytes after the fixed 20 bytes (a view into the packet). */
  options: Buffer;
}

/** An IPv4 packet as parseIpv4 reads it. */
export interface ParsedIpv4 {
  header: Ipv4Header;
  /** The value of the first Router Alert option, undefined when there is none. */
  routerAlert: number | undefined;
  /** Every Router Alert option value, in wire order. */
  routerAlerts: number[];
  /** Everything after the header, up to the total length (a view into the packet). */
  payload: Buffer;
}

/** RFC 2113: option type 148 (copied, class 0, number 20), length 4, a 16-bit value. */
const ROUTER_ALERT_OPTION = 148;

function malformed(what: string): CodedError {
  return stateError('ERR_PACKET_MALFORMED', `Malformed IPv4 packet: ${what}`);
}

function dotted(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * Parses the IPv4 header at the start of `b`, and the values of its Router Alert options.
 * Views into `b`, never a read past it.
 *
 * @throws ERR_PACKET_MALFORMED for a short buffer, a version other than 4, header and total
 *   lengths that do not fit the bytes, or an option that runs past the header.
 */
export function parseIpv4(b: Buffer): ParsedIpv4 {
  if (b.length < 20) throw malformed(`${b.length} bytes is shorter than the 20-byte IPv4 header`);
  if (b[0] >> 4 !== 4) throw malformed(`IP version ${b[0] >> 4}, expected 4`);
  const headerLength = (b[0] & 0x0f) * 4;
  const totalLength = b.readUInt16BE(2);
  if (headerLength < 20 || headerLength > totalLength || totalLength > b.length) {
    throw malformed(`header length ${headerLength} and total length ${totalLength} do not fit ${b.length} bytes`);
  }
  const options = b.subarray(20, headerLength);
  const routerAlerts: number[] = [];
  for (let i = 0; i < options.length; ) {
    const type = options[i];
    if (type === 0) break; // end of option list
    if (type === 1) {
      i++; // no-operation
      continue;
    }
    const len = i + 1 < options.length ? options[i + 1] : 0;
    if (len < 2 || i + len > options.length) throw malformed(`option ${type} at ${20 + i} has length ${len}`);
    if (type === ROUTER_ALERT_OPTION && len === 4) routerAlerts.push(options.readUInt16BE(i + 2));
    i += len;
  }
  const flags = b.readUInt16BE(6);
  return {
    header: {
      version: 4,
      headerLength,
      tos: b[1],
      totalLength,
      identification: b.readUInt16BE(4),
      dontFragment: (flags & 0x4000) !== 0,
      moreFragments: (flags & 0x2000) !== 0,
      fragmentOffset: (flags & 0x1fff) * 8,
      ttl: b[8],
      protocol: b[9],
      checksum: b.readUInt16BE(10),
      source: dotted(b, 12),
      destination: dotted(b, 16),
      options,
    },
    routerAlert: routerAlerts[0],
    routerAlerts,
    payload: b.subarray(headerLength, totalLength),
  };
}
