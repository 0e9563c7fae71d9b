/*
 * sink: the machine's receive limit. A UDP/IPv6 socket bound to [::]:PORT (optionally joined
 * to a multicast group on one interface) drained with recvmmsg, counting datagrams and
 * bytes. No per-packet metadata is asked for: this is the floor every library is compared to.
 * Drops are read from the socket's counter when reported (SO_MEMINFO), as ip6sock does.
 *
 * With --info it asks for what ip6sock's UDP sockets ask for of every datagram: the source
 * address (msg_name), IPV6_PKTINFO (destination and arrival interface) and IPV6_HOPLIMIT,
 * and reads them into a small record per datagram. The kernel's cost of that information
 * is then in the sink's rate too, which separates it from the library's own cost.
 *
 *   sink --port P [--group G --ifname IF] [--info] [--batch 64] [--rcvbuf BYTES] [--max-seconds S]
 *
 * Commands on stdin: reset | report IDLE_MS MAX_MS | quit (see common.h).
 */
#include "common.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SLOT 65536 /* as large as ip6sock's default maxMessageSize: same truncation behaviour */
#define MAX_BATCH 1024
#define MAX_ROUNDS 64 /* batches per readiness event before stdin gets a look */

/* What --info reads of one datagram. */
struct info {
  struct in6_addr source, destination;
  uint16_t port;
  int ifindex, hop_limit;
};

struct sink {
  unsigned batch;
  struct mmsghdr* msgs;
  struct iovec* iovs;
  char* control;
  size_t control_space;
  struct sockaddr_in6* names; /* --info only, as the one below */
  struct info* info;
};

#define INFO_CONTROL_SPACE (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int)))

/* --info: the source, destination, interface and hop limit of one datagram. */
static void read_info(struct msghdr* h, const struct sockaddr_in6* name, struct info* out) {
  out->source = name->sin6_addr;
  out->port = ntohs(name->sin6_port);
  out->ifindex = -1;
  out->hop_limit = -1;
  for (struct cmsghdr* cm = CMSG_FIRSTHDR(h); cm != NULL; cm = CMSG_NXTHDR(h, cm)) {
    if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(cm), sizeof pi);
      out->destination = pi.ipi6_addr;
      out->ifindex = (int)pi.ipi6_ifindex;
    } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT) {
      memcpy(&out->hop_limit, CMSG_DATA(cm), sizeof out->hop_limit);
    }
  }
}

static void drain(int fd, struct counter* c, void* ctx) {
  struct sink* s = ctx;
  for (int round = 0; round < MAX_ROUNDS; round++) {
    for (unsigned i = 0; i < s->batch; i++) {
      if (s->names != NULL) s->msgs[i].msg_hdr.msg_namelen = sizeof *s->names;
      s->msgs[i].msg_hdr.msg_controllen = s->control_space;
      s->msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(fd, s->msgs, s->batch, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return; /* EAGAIN, or a pending error consumed by the call: back to poll */
    }
    if (n == 0) return;
    for (int i = 0; i < n; i++) c->bytes += s->msgs[i].msg_len;
    c->received += (uint64_t)n;
    if (s->info != NULL) {
      for (int i = 0; i < n; i++) read_info(&s->msgs[i].msg_hdr, &s->names[i], &s->info[i]);
    }
    counter_stamp(c, now_ns());
    if ((unsigned)n < s->batch) return;
  }
}

int main(int argc, char** argv) {
  const char* prog = "sink";
  int port = -1, rcvbuf = 0, info = 0;
  unsigned max_seconds = 900;
  const char* group = NULL;
  const char* ifname = NULL;
  struct sink s = {.batch = 64};
  static const struct option opts[] = {
      {"port", required_argument, 0, 'p'},   {"group", required_argument, 0, 'g'},
      {"ifname", required_argument, 0, 'i'}, {"batch", required_argument, 0, 'b'},
      {"rcvbuf", required_argument, 0, 'r'}, {"max-seconds", required_argument, 0, 'm'},
      {"info", no_argument, 0, 'n'},         {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'p': port = atoi(optarg); break;
      case 'g': group = optarg; break;
      case 'i': ifname = optarg; break;
      case 'b': s.batch = (unsigned)atoi(optarg); break;
      case 'r': rcvbuf = atoi(optarg); break;
      case 'm': max_seconds = (unsigned)atoi(optarg); break;
      case 'n': info = 1; break;
      default: usage_error(prog, "usage: sink --port P [--group G --ifname IF] [--info] [--batch N] [--rcvbuf B] [--max-seconds S]");
    }
  }
  if (port <= 0 || port > 65535) usage_error(prog, "--port 1..65535 is required");
  if (s.batch < 1 || s.batch > MAX_BATCH) usage_error(prog, "--batch must be 1..1024");
  if (group != NULL && ifname == NULL) usage_error(prog, "--group needs --ifname");
  alarm(max_seconds);

  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(prog, "socket");
  int one = 1;
  if (info && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0) die(prog, "setsockopt IPV6_RECVPKTINFO");
  if (info && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) < 0) die(prog, "setsockopt IPV6_RECVHOPLIMIT");
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) die(prog, "setsockopt SO_RCVBUF");
  struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_ANY_INIT};
  if (bind(fd, (struct sockaddr*)&any, sizeof any) < 0) die(prog, "bind");
  if (group != NULL) {
    struct group_req req;
    memset(&req, 0, sizeof req);
    req.gr_interface = if_nametoindex(ifname);
    if (req.gr_interface == 0) die(prog, "if_nametoindex");
    struct sockaddr_in6* g = (struct sockaddr_in6*)&req.gr_group;
    g->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, group, &g->sin6_addr) != 1) usage_error(prog, "--group is not an IPv6 address");
    if (setsockopt(fd, IPPROTO_IPV6, MCAST_JOIN_GROUP, &req, sizeof req) < 0) die(prog, "setsockopt MCAST_JOIN_GROUP");
  }

  /* Payload slots are left untouched until the kernel writes into them: address space, not RSS. */
  char* slab = malloc((size_t)s.batch * SLOT);
  s.msgs = calloc(s.batch, sizeof *s.msgs);
  s.iovs = calloc(s.batch, sizeof *s.iovs);
  if (slab == NULL || s.msgs == NULL || s.iovs == NULL) die(prog, "malloc");
  if (info) {
    s.control_space = INFO_CONTROL_SPACE;
    s.control = calloc(s.batch, s.control_space);
    s.names = calloc(s.batch, sizeof *s.names);
    s.info = calloc(s.batch, sizeof *s.info);
    if (s.control == NULL || s.names == NULL || s.info == NULL) die(prog, "malloc");
  }
  for (unsigned i = 0; i < s.batch; i++) {
    s.iovs[i].iov_base = slab + (size_t)i * SLOT;
    s.iovs[i].iov_len = SLOT;
    s.msgs[i].msg_hdr.msg_iov = &s.iovs[i];
    s.msgs[i].msg_hdr.msg_iovlen = 1;
    if (info) {
      s.msgs[i].msg_hdr.msg_control = s.control + (size_t)i * s.control_space;
      s.msgs[i].msg_hdr.msg_name = &s.names[i];
    }
  }

  int got = 0;
  socklen_t len = sizeof got;
  char extra[64];
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
  snprintf(extra, sizeof extra, "\"rcvbuf\":%d", got);
  reply_ready(extra);
  serve_counter(prog, fd, drain, &s);
  return 0;
}
