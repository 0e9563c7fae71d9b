/*
 * Shared by the bench's C programs (the machine's limit that ip6sock is compared with).
 *
 * Every program speaks the same line protocol as the bench's Node children: commands, one
 * per line, on stdin; one JSON object per line on stdout. The first line is
 * {"event":"ready",...} once the socket is set up. EOF on stdin (the bench went away) or
 * "quit" ends the program, and alarm(--max-seconds) bounds it whatever happens.
 *
 * Receivers (sink, relay) count what they handle and take a time stamp after every batch;
 * the bench computes the rate from the first and last stamps, (c1 - c0) / (t1 - t0), the
 * same way for every implementation.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time this process has used (all threads, user + system). */
static inline uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Resident set size of this process in kB (VmRSS in /proc/self/status), -1 if unknown. */
static inline long rss_kb(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb;
}

static inline void die(const char* prog, const char* what) {
  fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
  exit(1);
}

static inline void usage_error(const char* prog, const char* msg) {
  fprintf(stderr, "%s: %s\n", prog, msg);
  exit(2);
}

/* Line reader for a non-blocking-style loop: fill once when poll says stdin is readable,
 * then take whole lines until none is left. */
struct lines {
  char buf[4096];
  size_t len;
};

/* Reads what stdin has. Returns -1 on EOF or error (the bench is gone), else 0. */
static inline int lines_fill(struct lines* l) {
  if (l->len == sizeof l->buf) return -1; /* a line longer than the buffer: not our protocol */
  ssize_t n;
  do {
    n = read(0, l->buf + l->len, sizeof l->buf - l->len);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return -1;
  l->len += (size_t)n;
  return 0;
}

/* Moves one whole line (without '\n') into out. Returns 1 if there was one. */
static inline int lines_take(struct lines* l, char* out, size_t outlen) {
  char* nl = memchr(l->buf, '\n', l->len);
  if (nl == NULL) return 0;
  size_t n = (size_t)(nl - l->buf);
  size_t copy = n < outlen - 1 ? n : outlen - 1;
  memcpy(out, l->buf, copy);
  out[copy] = '\0';
  memmove(l->buf, nl + 1, l->len - n - 1);
  l->len -= n + 1;
  return 1;
}

static inline void reply_ready(const char* extra) {
  printf("{\"event\":\"ready\",\"pid\":%ld%s%s}\n", (long)getpid(), extra[0] ? "," : "", extra);
  fflush(stdout);
}

static inline void reply_error(const char* msg) {
  printf("{\"error\":\"%s\"}\n", msg);
  fflush(stdout);
}

/* What a receiver counted since the last reset, with the first and last batch stamps, and
 * the CPU time of the process at the reset. */
struct counter {
  uint64_t received, bytes, other;
  uint64_t c0, t0, c1, t1;
  uint64_t cpu0;
};

static inline void counter_reset(struct counter* c) {
  memset(c, 0, sizeof *c);
  c->cpu0 = cpu_ns();
}

/* After a batch: `received` already includes it. */
static inline void counter_stamp(struct counter* c, uint64_t now) {
  if (c->t0 == 0) {
    c->c0 = c->received;
    c->t0 = now;
  }
  c->c1 = c->received;
  c->t1 = now;
}

/*
 * The receive loop of sink and relay: poll the socket and stdin, hand readable sockets to
 * `drain` (which reads until EAGAIN, bounded, counting into the counter and stamping), and
 * answer commands:
 *   reset                 zero the counter                  -> {"event":"reset"}
 *   report IDLE_MS MAX_MS wait until nothing arrived for IDLE_MS (at most MAX_MS), then
 *                         -> {"received":..,"bytes":..,"c0":..,"t0":..,"c1":..,"t1":..,
 *                             "other":..,"kernelDrops":..,"cpuNs":..,"rssKb":..}
 *                         (cpuNs: CPU time used since the reset)
 *   hold MS               answer, then read nothing for MS ms  -> {"event":"hold"}
 *                         (datagrams pile up in the socket's buffer: the next reads
 *                         measure how fast a backlog drains)
 *   quit                  exit
 * kernelDrops is the socket's drop counter (SO_MEMINFO, SK_MEMINFO_DROPS), read when asked.
 */
typedef void (*drain_fn)(int fd, struct counter* c, void* ctx);

static inline unsigned long kernel_drops(int fd) {
  uint32_t info[SK_MEMINFO_VARS];
  socklen_t len = sizeof info;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) < 0 || len <= SK_MEMINFO_DROPS * sizeof info[0]) return 0;
  return info[SK_MEMINFO_DROPS];
}

static inline void serve_counter(const char* prog, int fd, drain_fn drain, void* ctx) {
  struct counter c;
  struct lines in = {.len = 0};
  char line[256];
  int reporting = 0;
  uint64_t report_start = 0, idle_ns = 0, max_ns = 0;
  counter_reset(&c);
  for (;;) {
    int timeout = -1;
    if (reporting) {
      uint64_t now = now_ns();
      uint64_t last = c.t1 > report_start ? c.t1 : report_start;
      if (now - last >= idle_ns || now - report_start >= max_ns) {
        printf("{\"received\":%llu,\"bytes\":%llu,\"c0\":%llu,\"t0\":%llu,\"c1\":%llu,\"t1\":%llu,"
               "\"other\":%llu,\"kernelDrops\":%lu,\"cpuNs\":%llu,\"rssKb\":%ld}\n",
               (unsigned long long)c.received, (unsigned long long)c.bytes, (unsigned long long)c.c0,
               (unsigned long long)c.t0, (unsigned long long)c.c1, (unsigned long long)c.t1,
               (unsigned long long)c.other, kernel_drops(fd),
               (unsigned long long)(cpu_ns() - c.cpu0), rss_kb());
        fflush(stdout);
        reporting = 0;
        continue;
      }
      uint64_t wait = idle_ns - (now - last);
      timeout = (int)(wait / 1000000ull) + 1;
    }
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    int r = poll(p, 2, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      die(prog, "poll");
    }
    if (p[0].revents & (POLLIN | POLLERR)) drain(fd, &c, ctx);
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (lines_fill(&in) < 0) exit(0);
      while (lines_take(&in, line, sizeof line)) {
        unsigned long idle_ms = 0, max_ms = 0;
        if (strcmp(line, "quit") == 0) {
          exit(0);
        } else if (strcmp(line, "reset") == 0) {
          counter_reset(&c);
          printf("{\"event\":\"reset\"}\n");
          fflush(stdout);
        } else if (sscanf(line, "hold %lu", &idle_ms) == 1) {
          printf("{\"event\":\"hold\"}\n");
          fflush(stdout);
          struct timespec t = {.tv_sec = (time_t)(idle_ms / 1000), .tv_nsec = (long)(idle_ms % 1000) * 1000000L};
          while (nanosleep(&t, &t) < 0 && errno == EINTR) {
          }
        } else if (sscanf(line, "report %lu %lu", &idle_ms, &max_ms) == 2) {
          reporting = 1;
          report_start = now_ns();
          idle_ns = idle_ms * 1000000ull;
          max_ns = max_ms * 1000000ull;
        } else {
          reply_error("unknown command");
        }
      }
    }
  }
}

#endif
