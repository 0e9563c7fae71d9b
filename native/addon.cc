// Module entry: the Socket class, interface discovery inside a namespace, the addresses of
// any socket descriptor, and the kernel's constants taken from the system headers (lib/
// never hard-codes an option number).
#include <ifaddrs.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <set>

#include "common.h"
#include "socket.h"

// Newer than some libc headers; the values are the kernel ABI (include/uapi/linux/in6.h).
#ifndef IPV6_ROUTER_ALERT_ISOLATE
#define IPV6_ROUTER_ALERT_ISOLATE 30
#endif
#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

namespace ip6sock {
namespace {

int PrefixLength(const sockaddr* mask) {
  if (mask == nullptr) return 0;
  const uint8_t* bytes;
  size_t n;
  if (mask->sa_family == AF_INET6) {
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    n = 16;
  } else if (mask->sa_family == AF_INET) {
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    n = 4;
  } else {
    return 0;
  }
  int bits = 0;
  for (size_t i = 0; i < n; i++) bits += __builtin_popcount(bytes[i]);
  return bits;
}

// interfaces(netnsPath?) -> { links: [{ index, name, flags }], addresses: [{ name, family,
// address, prefixLength, scopeId }] }, read inside the namespace.
Napi::Value Interfaces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NetnsGuard inNamespace(env, OptionalString(info[0]));
  Napi::Array links = Napi::Array::New(env);
  Napi::Array addresses = Napi::Array::New(env);
  // Owned for the whole function: any Set() below throws when the worker is terminated.
  const std::unique_ptr<struct if_nameindex, decltype(&if_freenameindex)> names(if_nameindex(), if_freenameindex);
  if (names == nullptr) ThrowErrno(env, errno, "if_nameindex");
  ifaddrs* addrs = nullptr;
  if (getifaddrs(&addrs) < 0) ThrowErrno(env, errno, "getifaddrs");
  const std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> list(addrs, freeifaddrs);
  uint32_t nl = 0;
  for (struct if_nameindex* p = names.get(); p->if_index != 0; p++) {
    unsigned flags = 0;
    for (ifaddrs* a = list.get(); a != nullptr; a = a->ifa_next) {
      if (a->ifa_name != nullptr && std::strcmp(a->ifa_name, p->if_name) == 0) {
        flags = a->ifa_flags;
        break;
      }
    }
    Napi::Object link = Napi::Object::New(env);
    link.Set("index", p->if_index);
    link.Set("name", p->if_name);
    link.Set("flags", flags);
    links.Set(nl++, link);
  }
  uint32_t na = 0;
  for (ifaddrs* a = list.get(); a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    const int family = a->ifa_addr->sa_family;
    if (family != AF_INET6 && family != AF_INET) continue;
    sockaddr_storage ss;
    std::memset(&ss, 0, sizeof(ss));
    std::memcpy(&ss, a->ifa_addr, family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    Napi::Object entry = FromSockaddr(env, ss);
    entry.Delete("port");
    entry.Set("name", a->ifa_name);
    entry.Set("prefixLength", PrefixLength(a->ifa_netmask));
    addresses.Set(na++, entry);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("links", links);
  result.Set("addresses", addresses);
  return result;
}

// socketAddress(fd, peer) -> { address, port, family, scopeId, interface }: getsockname()
// (or getpeername() with `peer`) of any socket descriptor, also one Node's net module owns.
// `interface` names the scope id in the socket's own namespace (SIOCGIFNAME on that socket),
// '' when there is none or no such interface.
Napi::Value SocketAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const bool peer = info[1].ToBoolean().Value();
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  socklen_t len = sizeof(ss);
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  if ((peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len)) < 0) {
    ThrowErrno(env, errno, peer ? "getpeername" : "getsockname");
  }
  Napi::Object result = FromSockaddr(env, ss);
  std::string name;
  const uint32_t scopeId = ss.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_scope_id : 0;
  if (scopeId != 0) {
    ifreq ifr;
    std::memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_ifindex = static_cast<int>(scopeId);
    if (ioctl(fd, SIOCGIFNAME, &ifr) == 0) name.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  }
  result.Set("interface", name);
  return result;
}

// The whole text of a file under /proc, opened (so resolved) on the calling thread.
std::string ReadProcText(Napi::Env env, const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, errno, "open");
  std::string text;
  char chunk[8192];
  for (;;) {
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      close(fd);
      ThrowErrno(env, e, "read");
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

// netFile(netnsPath?, name) -> the text of /proc/net/NAME as seen from inside the namespace
// (/proc/thread-self/net follows the calling thread's namespace, /proc/self/net does not).
Napi::Value NetFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  NetnsGuard inNamespace(env, OptionalString(info[0]));
  return Napi::String::New(env, ReadProcText(env, "/proc/thread-self/net/" + name));
}

// sysctl(netnsPath?, name) -> the text of /proc/sys/net/NAME inside the namespace. The kernel
// picks the per-namespace sysctl table when the path is looked up, from the namespace of the
// OPENING THREAD (current->nsproxy), so opening it inside the guard reads that namespace's
// value; no /proc/net-style thread-self path is needed or exists for /proc/sys.
Napi::Value Sysctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  NetnsGuard inNamespace(env, OptionalString(info[0]));
  return Napi::String::New(env, ReadProcText(env, "/proc/sys/net/" + name));
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
#define C(name) c.Set(#name, Napi::Number::New(env, name))
  C(AF_INET); C(AF_INET6); C(SOCK_DGRAM); C(SOCK_RAW); C(SOCK_STREAM);
  C(SOL_SOCKET); C(IPPROTO_IP); C(IPPROTO_IPV6); C(IPPROTO_ICMPV6); C(IPPROTO_UDP); C(IPPROTO_RAW);
  C(IPPROTO_HOPOPTS); C(SOL_RAW);
  C(SO_REUSEADDR); C(SO_REUSEPORT); C(SO_RCVBUF); C(SO_SNDBUF); C(SO_RCVBUFFORCE); C(SO_SNDBUFFORCE);
  C(SO_BINDTODEVICE); C(SO_BINDTOIFINDEX); C(SO_MEMINFO); C(SK_MEMINFO_DROPS); C(SK_MEMINFO_VARS); C(SO_ERROR); C(SO_TYPE); C(SO_PROTOCOL); C(SO_DOMAIN);
  C(AF_UNIX); C(SO_PEERCRED);
  C(IPV6_V6ONLY); C(IPV6_UNICAST_HOPS); C(IPV6_MULTICAST_IF); C(IPV6_MULTICAST_HOPS);
  C(IPV6_MULTICAST_LOOP); C(IPV6_JOIN_GROUP); C(IPV6_LEAVE_GROUP); C(IPV6_MULTICAST_ALL);
  C(IPV6_JOIN_ANYCAST); C(IPV6_LEAVE_ANYCAST); C(IPV6_ROUTER_ALERT); C(IPV6_ROUTER_ALERT_ISOLATE);
  C(IPV6_RECVPKTINFO); C(IPV6_PKTINFO); C(IPV6_RECVHOPLIMIT); C(IPV6_HOPLIMIT); C(IPV6_RECVHOPOPTS);
  C(IPV6_HOPOPTS); C(IPV6_RECVTCLASS); C(IPV6_TCLASS); C(IPV6_RECVERR); C(IPV6_CHECKSUM);
  C(IPV6_HDRINCL); C(IPV6_FREEBIND); C(IPV6_TRANSPARENT); C(IPV6_MTU_DISCOVER); C(IPV6_DSTOPTS);
  C(IPV6_RECVDSTOPTS);
  C(MCAST_JOIN_GROUP); C(MCAST_LEAVE_GROUP); C(MCAST_BLOCK_SOURCE); C(MCAST_UNBLOCK_SOURCE);
  C(MCAST_JOIN_SOURCE_GROUP); C(MCAST_LEAVE_SOURCE_GROUP); C(MCAST_MSFILTER);
  C(IP_MULTICAST_IF); C(IP_MULTICAST_TTL); C(IP_MULTICAST_LOOP); C(IP_ADD_MEMBERSHIP);
  C(IP_DROP_MEMBERSHIP); C(IP_MULTICAST_ALL); C(IP_PKTINFO); C(IP_RECVTTL); C(IP_TTL); C(IP_RECVTOS);
  C(IP_TOS); C(IP_ROUTER_ALERT); C(IP_HDRINCL); C(IP_FREEBIND);
  C(ICMP6_FILTER);
  C(IFF_UP); C(IFF_RUNNING); C(IFF_MULTICAST); C(IFF_LOOPBACK); C(IFF_BROADCAST); C(IFF_POINTOPOINT);
  C(MSG_TRUNC); C(MSG_CTRUNC);
  // rtnetlink, for the interface watcher (lib/links/rtnetlink.ts parses the messages).
  C(AF_UNSPEC); C(AF_NETLINK); C(NETLINK_ROUTE); C(RTMGRP_LINK); C(RTMGRP_IPV4_IFADDR); C(RTMGRP_IPV6_IFADDR);
  C(RTM_NEWLINK); C(RTM_DELLINK); C(RTM_GETLINK); C(RTM_NEWADDR); C(RTM_DELADDR); C(RTM_GETADDR);
  C(NLMSG_NOOP); C(NLMSG_ERROR); C(NLMSG_DONE); C(NLMSG_OVERRUN); C(NLMSG_HDRLEN); C(NLMSG_ALIGNTO);
  C(NLM_F_REQUEST); C(NLM_F_MULTI); C(NLM_F_DUMP); C(NLM_F_DUMP_INTR);
  C(RTA_ALIGNTO); C(NLA_TYPE_MASK); C(IFLA_IFNAME); C(IFA_ADDRESS); C(IFA_LOCAL); C(IFA_LABEL);
#undef C
  // Struct layouts by name, from the headers rather than hand-computed offsets.
#define S(type) c.Set("sizeof(" #type ")", Napi::Number::New(env, sizeof(type)))
#define O(type, field) c.Set(#type "." #field, Napi::Number::New(env, offsetof(type, field)))
  S(nlmsghdr); O(nlmsghdr, nlmsg_len); O(nlmsghdr, nlmsg_type); O(nlmsghdr, nlmsg_flags); O(nlmsghdr, nlmsg_seq);
  O(nlmsghdr, nlmsg_pid);
  S(nlmsgerr); O(nlmsgerr, error);
  S(rtattr); O(rtattr, rta_len); O(rtattr, rta_type);
  S(ifinfomsg); O(ifinfomsg, ifi_family); O(ifinfomsg, ifi_index); O(ifinfomsg, ifi_flags); O(ifinfomsg, ifi_change);
  S(ifaddrmsg); O(ifaddrmsg, ifa_family); O(ifaddrmsg, ifa_prefixlen); O(ifaddrmsg, ifa_index);
#undef O
#undef S
  return c;
}

// The formats JavaScript shares with socket.cc, from their structs (socket.h): the received
// record's byte offsets, the send plan's int32 fields and the queued marker. lib/core/
// native.ts reads them at load and refuses to run without a field it needs.
Napi::Object Layouts(Napi::Env env) {
  Napi::Object record = Napi::Object::New(env);
#define F(field) record.Set(#field, Napi::Number::New(env, offsetof(MessageRecord, field)))
  F(dataOffset); F(dataLength); F(flags); F(family); F(port); F(scopeId); F(ifindex); F(hopLimit); F(tclass);
  F(hopOptsOffset); F(hopOptsLength); F(source); F(destination); F(hasDestination);
#undef F
  record.Set("size", Napi::Number::New(env, sizeof(MessageRecord)));
  Napi::Object plan = Napi::Object::New(env);
#define F(field) plan.Set(#field, Napi::Number::New(env, static_cast<double>(offsetof(SendPlanEntry, field) / sizeof(int32_t))))
  F(addressRef); F(port); F(scopeId); F(ifindex); F(sourceRef); F(hopLimit); F(tclass); F(hopOptsRef); F(id); F(result);
#undef F
  plan.Set("fields", Napi::Number::New(env, static_cast<double>(plan::kFields)));
  Napi::Object layouts = Napi::Object::New(env);
  layouts.Set("record", record);
  layouts.Set("sendPlan", plan);
  layouts.Set("sendQueued", Napi::Number::New(env, kSendQueued));
  return layouts;
}

// Environment teardown (worker exit, process exit): close every socket and wait, as an
// async cleanup hook, until libuv has called back for each poll handle we closed.
// Neither it nor ReleaseAddon may let a C++ exception out: Node calls them from C.
void Teardown(napi_async_cleanup_hook_handle hook, void* data) {
  auto* addon = static_cast<Addon*>(data);
  addon->tearingDown = true;
  addon->teardownHook = hook;
  try {
    // Copy: ForceClose does not erase, but a destructor running meanwhile could.
    const std::set<Socket*> open(addon->sockets);
    for (Socket* s : open) s->ForceClose();
  } catch (...) {
    // Out of memory for the copy: close them in place, which ForceClose allows.
    for (Socket* s : addon->sockets) s->ForceClose();
  }
  if (addon->callbackNames != nullptr) napi_delete_reference(addon->env, addon->callbackNames);
  addon->callbackNames = nullptr;
  addon->FinishTeardownIfDone();
}

void ReleaseAddon(Napi::Env, Addon* addon) noexcept {
  addon->released = true;
  addon->DeleteIfUnused();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* addon = new Addon();
  addon->env = env;
  // Sockets may be finalized after the instance data during teardown: whoever is last frees.
  env.SetInstanceData<Addon, ReleaseAddon>(addon);
  napi_add_async_cleanup_hook(env, Teardown, addon, nullptr);
  exports.Set("Socket", Socket::Init(env));
  exports.Set("interfaces", Napi::Function::New(env, Interfaces, "interfaces"));
  exports.Set("netFile", Napi::Function::New(env, NetFile, "netFile"));
  exports.Set("sysctl", Napi::Function::New(env, Sysctl, "sysctl"));
  exports.Set("socketAddress", Napi::Function::New(env, SocketAddress, "socketAddress"));
  exports.Set("constants", Constants(env));
  exports.Set("layouts", Layouts(env));
  return exports;
}

}  // namespace
}  // namespace ip6sock

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return ip6sock::Init(env, exports); }

NODE_API_MODULE(ip6sock, InitModule)
