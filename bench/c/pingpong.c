/*
 * pingpong: round-trip latency floor. One datagram in flight at a time.
 *
 *   pingpong echo --port P [--max-seconds S]
 *       answers every datagram to its sender; ends on EOF or "quit" on stdin.
 *   pingpong ping --dst ADDR --port P --size BYTES [--ra VALUE] [--max-seconds S]
 *       command "ping N TIMEOUT_MS": N round trips, one after the other; a reply carries the
 *       request's 4-byte sequence number; a request unanswered within TIMEOUT_MS is lost.
 *       -> {"count":..,"lost":..,"rttNs":[...],"rssKb":..}
 *       --ra: requests carry a hop-by-hop router alert option (needs CAP_NET_RAW).
 */
#include "common.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sys/socket.h>

static unsigned char buf[65536];

static int echo(int fd) {
  struct lines in = {.len = 0};
  char line[256];
  for (;;) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("pingpong", "poll");
    }
    if (p[0].revents & POLLIN) {
      for (;;) {
        struct sockaddr_in6 from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr*)&from, &fromlen);
        if (n < 0) break;
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr*)&from, fromlen);
      }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (lines_fill(&in) < 0) return 0;
      while (lines_take(&in, line, sizeof line)) {
        if (strcmp(line, "quit") == 0) return 0;
        reply_error("unknown command");
      }
    }
  }
}

static int ping(int fd, size_t size) {
  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) {
    unsigned long count = 0, timeout_ms = 0;
    if (strncmp(line, "quit", 4) == 0) return 0;
    if (sscanf(line, "ping %lu %lu", &count, &timeout_ms) != 2 || count > 10000000ul) {
      reply_error("unknown command");
      continue;
    }
    uint64_t* rtt = malloc((count ? count : 1) * sizeof *rtt);
    if (rtt == NULL) die("pingpong", "malloc");
    unsigned long ok = 0, lost = 0;
    for (uint32_t seq = 0; seq < count; seq++) {
      memcpy(buf, &seq, 4);
      uint64_t t0 = now_ns();
      uint64_t deadline = t0 + timeout_ms * 1000000ull;
      if (send(fd, buf, size, 0) < 0) {
        lost++;
        continue;
      }
      int answered = 0;
      for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
        if (r < 0 && errno != EINTR) die("pingpong", "poll");
        if (r <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        uint32_t got;
        if (n < 4) continue; /* EAGAIN, ECONNREFUSED, or a runt: keep waiting */
        memcpy(&got, buf, 4);
        if (got != seq) continue; /* a late answer to an earlier, timed-out request */
        rtt[ok++] = now_ns() - t0;
        answered = 1;
        break;
      }
      if (!answered) lost++;
    }
    printf("{\"count\":%lu,\"lost\":%lu,\"rssKb\":%ld,\"rttNs\":[", ok, lost, rss_kb());
    for (unsigned long i = 0; i < ok; i++) printf(i ? ",%llu" : "%llu", (unsigned long long)rtt[i]);
    printf("]}\n");
    fflush(stdout);
    free(rtt);
  }
  return 0;
}

int main(int argc, char** argv) {
  const char* prog = "pingpong";
  if (argc < 2 || (strcmp(argv[1], "echo") != 0 && strcmp(argv[1], "ping") != 0))
    usage_error(prog, "usage: pingpong echo|ping [options]");
  const int is_echo = strcmp(argv[1], "echo") == 0;
  const char* dst = NULL;
  int port = -1, size = 64, ra = -1;
  unsigned max_seconds = 900;
  static const struct option opts[] = {
      {"dst", required_argument, 0, 'd'}, {"port", required_argument, 0, 'p'},
      {"size", required_argument, 0, 's'}, {"ra", required_argument, 0, 'r'},
      {"max-seconds", required_argument, 0, 'm'}, {0, 0, 0, 0}};
  int o;
  optind = 2;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'd': dst = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 's': size = atoi(optarg); break;
      case 'r': ra = atoi(optarg); break;
      case 'm': max_seconds = (unsigned)atoi(optarg); break;
      default: usage_error(prog, "usage: pingpong echo --port P | ping --dst A --port P --size B [--ra V]");
    }
  }
  if (port <= 0 || port > 65535) usage_error(prog, "--port 1..65535 is required");
  if (size < 4 || size > 65000) usage_error(prog, "--size must be 4..65000");
  alarm(max_seconds);

  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(prog, "socket");
  if (is_echo) {
    struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_ANY_INIT};
    if (bind(fd, (struct sockaddr*)&any, sizeof any) < 0) die(prog, "bind");
    reply_ready("");
    return echo(fd);
  }
  if (dst == NULL) usage_error(prog, "ping needs --dst");
  struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET6, dst, &to.sin6_addr) != 1) usage_error(prog, "--dst is not an IPv6 address");
  if (ra >= 0) {
    unsigned char hbh[8] = {0, 0, 5, 2, (unsigned char)(ra >> 8), (unsigned char)ra, 1, 0};
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_HOPOPTS, hbh, sizeof hbh) < 0) die(prog, "setsockopt IPV6_HOPOPTS");
  }
  /* Connected: only the peer's answers arrive, as with the Node clients. */
  if (connect(fd, (struct sockaddr*)&to, sizeof to) < 0) die(prog, "connect");
  memset(buf, 0x5a, sizeof buf);
  reply_ready("");
  return ping(fd, (size_t)size);
}
