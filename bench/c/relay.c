/*
 * relay: the classic C router-alert relay, as a loop. On a router (forwarding
 * on), a raw IPPROTO_RAW socket registered with IPV6_ROUTER_ALERT takes every forwarded
 * packet whose hop-by-hop router alert carries VALUE; the kernel then does NOT forward it, so
 * the relay sends it on: decrement the hop limit (byte 7) and sendto() the same socket with
 * the header's destination. IPV6_ROUTER_ALERT_ISOLATE keeps the tap to its own namespace.
 *
 *   relay --value V [--rcvbuf BYTES] [--max-seconds S]
 *
 * Commands on stdin: reset | report IDLE_MS MAX_MS | quit (see common.h). "received" counts
 * packets forwarded, "other" packets dropped (hop limit exhausted, malformed, send error).
 */
#include "common.h"

#include <getopt.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef IPV6_ROUTER_ALERT_ISOLATE
#define IPV6_ROUTER_ALERT_ISOLATE 30
#endif

#define MAX_PER_EVENT 4096 /* packets relayed per readiness event before stdin gets a look */

static unsigned char packet[65536];

static void drain(int fd, struct counter* c, void* ctx) {
  (void)ctx;
  int handled = 0;
  for (int i = 0; i < MAX_PER_EVENT; i++) {
    ssize_t n = recvfrom(fd, packet, sizeof packet, MSG_DONTWAIT, NULL, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    handled = 1;
    /* The whole packet: 40-byte IPv6 header first. */
    if (n < 40 || (packet[0] >> 4) != 6 || packet[7] <= 1) {
      c->other++;
      continue;
    }
    packet[7]--;
    struct sockaddr_in6 dest = {.sin6_family = AF_INET6};
    memcpy(&dest.sin6_addr, packet + 24, 16);
    if (sendto(fd, packet, (size_t)n, 0, (struct sockaddr*)&dest, sizeof dest) < 0) {
      c->other++;
      continue;
    }
    c->received++;
    c->bytes += (uint64_t)n;
    /* Stamped every 64 packets, as the Node receivers do, and at the end of the burst. */
    if ((c->received & 63) == 0) counter_stamp(c, now_ns());
  }
  if (handled) counter_stamp(c, now_ns());
}

int main(int argc, char** argv) {
  const char* prog = "relay";
  int value = -1, rcvbuf = 0;
  unsigned max_seconds = 900;
  static const struct option opts[] = {
      {"value", required_argument, 0, 'v'}, {"rcvbuf", required_argument, 0, 'r'},
      {"max-seconds", required_argument, 0, 'm'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'v': value = atoi(optarg); break;
      case 'r': rcvbuf = atoi(optarg); break;
      case 'm': max_seconds = (unsigned)atoi(optarg); break;
      default: usage_error(prog, "usage: relay --value V [--rcvbuf B] [--max-seconds S]");
    }
  }
  if (value < 0 || value > 65535) usage_error(prog, "--value 0..65535 is required");
  alarm(max_seconds);

  int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) die(prog, "socket");
  int one = 1;
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) die(prog, "setsockopt SO_RCVBUF");
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_ROUTER_ALERT_ISOLATE, &one, sizeof one) < 0) die(prog, "setsockopt IPV6_ROUTER_ALERT_ISOLATE");
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_ROUTER_ALERT, &value, sizeof value) < 0) die(prog, "setsockopt IPV6_ROUTER_ALERT");
  reply_ready("");
  serve_counter(prog, fd, drain, NULL);
  return 0;
}
