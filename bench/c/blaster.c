/*
 * blaster: the traffic source. Sends a fixed number of UDP/IPv6 datagrams at full rate with
 * sendmmsg, so the sender is never what limits a receive measurement; also the machine's
 * send limit in the send scenario.
 *
 *   blaster --dst ADDR --port P --size BYTES [--ifname IF] [--ra VALUE] [--connect]
 *           [--batch 64] [--max-seconds S]
 *
 * --ifname: the outgoing interface for a multicast (IPV6_MULTICAST_IF) or link-local
 *   destination. --ra: every datagram carries a hop-by-hop router alert option with this
 *   value (sticky IPV6_HOPOPTS; needs CAP_NET_RAW). --connect: connect() the socket first,
 *   so the kernel routes and picks the source once instead of for every datagram (the
 *   fastest way to send, used as the traffic source; without it, the same per-datagram
 *   work as an unconnected library socket).
 *
 * Commands on stdin:
 *   send N  -> {"sent":..,"errors":..,"retries":..,"elapsedNs":..,"rssKb":..}
 *   quit
 */
#include "common.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MAX_BATCH 1024

int main(int argc, char** argv) {
  const char* prog = "blaster";
  const char* dst = NULL;
  const char* ifname = NULL;
  int port = -1, size = -1, ra = -1, connected = 0;
  unsigned batch = 64, max_seconds = 900;
  static const struct option opts[] = {
      {"dst", required_argument, 0, 'd'},   {"port", required_argument, 0, 'p'},
      {"size", required_argument, 0, 's'},  {"ifname", required_argument, 0, 'i'},
      {"ra", required_argument, 0, 'r'},    {"batch", required_argument, 0, 'b'},
      {"connect", no_argument, 0, 'c'},
      {"max-seconds", required_argument, 0, 'm'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'd': dst = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 's': size = atoi(optarg); break;
      case 'i': ifname = optarg; break;
      case 'r': ra = atoi(optarg); break;
      case 'b': batch = (unsigned)atoi(optarg); break;
      case 'c': connected = 1; break;
      case 'm': max_seconds = (unsigned)atoi(optarg); break;
      default: usage_error(prog, "usage: blaster --dst A --port P --size B [--ifname IF] [--ra V] [--connect] [--batch N] [--max-seconds S]");
    }
  }
  if (dst == NULL || port <= 0 || port > 65535 || size < 0 || size > 65000) usage_error(prog, "--dst, --port and --size are required");
  if (batch < 1 || batch > MAX_BATCH) usage_error(prog, "--batch must be 1..1024");
  alarm(max_seconds);

  struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET6, dst, &to.sin6_addr) != 1) usage_error(prog, "--dst is not an IPv6 address");
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(prog, "socket");
  if (ifname != NULL) {
    int index = (int)if_nametoindex(ifname);
    if (index == 0) die(prog, "if_nametoindex");
    if (IN6_IS_ADDR_MULTICAST(&to.sin6_addr)) {
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) < 0) die(prog, "setsockopt IPV6_MULTICAST_IF");
      int zero = 0;
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero) < 0) die(prog, "setsockopt IPV6_MULTICAST_LOOP");
    }
    if (IN6_IS_ADDR_LINKLOCAL(&to.sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&to.sin6_addr)) to.sin6_scope_id = (uint32_t)index;
  }
  if (ra >= 0) {
    /* RFC 2711 router alert in a hop-by-hop header: type 5, length 2, value, then PadN(0). */
    unsigned char hbh[8] = {0, 0, 5, 2, (unsigned char)(ra >> 8), (unsigned char)ra, 1, 0};
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_HOPOPTS, hbh, sizeof hbh) < 0) die(prog, "setsockopt IPV6_HOPOPTS");
  }

  if (connected && connect(fd, (struct sockaddr*)&to, sizeof to) < 0) die(prog, "connect");

  /* One payload shared by every message of the batch: the bytes do not matter, the count does. */
  char* payload = malloc(size > 0 ? (size_t)size : 1);
  struct mmsghdr* msgs = calloc(batch, sizeof *msgs);
  struct iovec iov;
  if (payload == NULL || msgs == NULL) die(prog, "malloc");
  memset(payload, 0x5a, size > 0 ? (size_t)size : 1);
  iov.iov_base = payload;
  iov.iov_len = (size_t)size;
  for (unsigned i = 0; i < batch; i++) {
    msgs[i].msg_hdr.msg_name = connected ? NULL : &to;
    msgs[i].msg_hdr.msg_namelen = connected ? 0 : sizeof to;
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  reply_ready("");
  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) {
    unsigned long long count = 0;
    if (strncmp(line, "quit", 4) == 0) break;
    if (sscanf(line, "send %llu", &count) != 1) {
      reply_error("unknown command");
      continue;
    }
    unsigned long long sent = 0, errors = 0, retries = 0;
    uint64_t t0 = now_ns();
    while (sent + errors < count) {
      unsigned long long left = count - sent - errors;
      unsigned k = left < batch ? (unsigned)left : batch;
      int r = sendmmsg(fd, msgs, k, 0);
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) {
          retries++; /* the device queue is full for a moment: try again (alarm bounds it) */
          continue;
        }
        errors++; /* the first datagram of the batch failed (e.g. no route yet): skip it */
        continue;
      }
      sent += (unsigned long long)r;
    }
    uint64_t t1 = now_ns();
    printf("{\"sent\":%llu,\"errors\":%llu,\"retries\":%llu,\"elapsedNs\":%llu,\"rssKb\":%ld}\n", sent, errors,
           retries, (unsigned long long)(t1 - t0), rss_kb());
    fflush(stdout);
  }
  return 0;
}
