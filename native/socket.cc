#include "socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace ip6sock {

namespace {

// Control space for one received message: PKTINFO, hop limit, traffic class, and a
// hop-by-hop header of up to 2048 bytes (hdr-ext-len 255).
constexpr size_t kRecvControl = CMSG_SPACE(sizeof(in6_pktinfo)) + 2 * CMSG_SPACE(sizeof(int)) +
                                CMSG_SPACE(sizeof(in_pktinfo)) + CMSG_SPACE(2048) + 64;

// Most batches drained per readiness event before yielding to the rest of the loop.
constexpr int kMaxRoundsPerEvent = 64;

// Sizes of the receive pool buffers: the first is small, each new one twice the last, up to
// kPoolSize (a batch larger than that gets a pool of its own size).
constexpr size_t kPoolFirst = size_t{4} * 1024;
constexpr size_t kPoolSize = size_t{256} * 1024;

// Messages the receive scratch has room for at first (a short backlog still arrives in one
// callback); it doubles while reads fill it, up to the batch size asked for.
constexpr size_t kFirstBatch = 8;

// Largest number of messages one sendmmsg or recvmmsg takes (UIO_MAXIOV).
constexpr size_t kMaxSendBatch = 1024;
constexpr size_t kMaxFlushBatch = 256;
constexpr size_t kMaxRecvBatch = 1024;

inline void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void PutI32(uint8_t* p, int32_t v) { std::memcpy(p, &v, 4); }
inline void PutU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// The Buffer a receive keeps between batches behind `*ref`: the held one, or with `fresh` a
// new one of `size` bytes (its bytes in `*data`) that replaces it.
bool HeldBuffer(napi_env env, napi_ref* ref, bool fresh, size_t size, uint8_t** data, napi_value* value) {
  if (!fresh) return napi_get_reference_value(env, *ref, value) == napi_ok;
  if (*ref != nullptr) napi_delete_reference(env, *ref);
  *ref = nullptr;
  return napi_create_buffer(env, size, reinterpret_cast<void**>(data), value) == napi_ok &&
         napi_create_reference(env, *value, 1, ref) == napi_ok;
}

int IntArg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

// An AF_UNIX address in the abstract namespace (Linux): no file, one table per network
// namespace (the socket's own), and the name goes when its socket closes, also at exit.
socklen_t AbstractSockaddr(Napi::Env env, const std::string& name, sockaddr_storage* out) {
  auto* sa = reinterpret_cast<sockaddr_un*>(out);
  std::memset(sa, 0, sizeof(*sa));
  if (name.empty() || name.size() >= sizeof(sa->sun_path)) ThrowErrno(env, EINVAL, "bind");
  sa->sun_family = AF_UNIX;
  std::memcpy(sa->sun_path + 1, name.data(), name.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

void AddControl(std::vector<uint8_t>* control, int level, int type, const void* data, size_t len) {
  const size_t at = control->size();
  control->resize(at + CMSG_SPACE(len), 0);
  auto* c = reinterpret_cast<cmsghdr*>(control->data() + at);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  std::memcpy(CMSG_DATA(c), data, len);
}

}  // namespace

Napi::Function Socket::Init(Napi::Env env) {
  return DefineClass(env, "Socket",
                     {
                         InstanceAccessor<&Socket::GetFd>("fd"),
                         InstanceAccessor<&Socket::GetQueued>("queued"),
                         InstanceMethod<&Socket::Bind>("bind"),
                         InstanceMethod<&Socket::BindNetlink>("bindNetlink"),
                         InstanceMethod<&Socket::Connect>("connect"),
                         InstanceMethod<&Socket::Disconnect>("disconnect"),
                         InstanceMethod<&Socket::LocalAddress>("localAddress"),
                         InstanceMethod<&Socket::RemoteAddress>("remoteAddress"),
                         InstanceMethod<&Socket::InterfaceName>("interfaceName"),
                         InstanceMethod<&Socket::SetInt>("setInt"),
                         InstanceMethod<&Socket::GetInt>("getInt"),
                         InstanceMethod<&Socket::SetBuffer>("setBuffer"),
                         InstanceMethod<&Socket::GetBuffer>("getBuffer"),
                         InstanceMethod<&Socket::GroupReq>("groupReq"),
                         InstanceMethod<&Socket::Ipv6Mreq>("ipv6Mreq"),
                         InstanceMethod<&Socket::IpMreqn>("ipMreqn"),
                         InstanceMethod<&Socket::StartReceive>("startReceive"),
                         InstanceMethod<&Socket::StopReceive>("stopReceive"),
                         InstanceMethod<&Socket::SendBatch>("sendBatch"),
                         InstanceMethod<&Socket::Listen>("listen"),
                         InstanceMethod<&Socket::WatchConnect>("watchConnect"),
                         InstanceMethod<&Socket::Duplicate>("duplicate"),
                         InstanceMethod<&Socket::Detach>("detach"),
                         InstanceMethod<&Socket::Close>("close"),
                         InstanceMethod<&Socket::Ref>("ref"),
                         InstanceMethod<&Socket::Unref>("unref"),
                     });
}

// new Socket(family 6|4|AF_NETLINK|AF_UNIX, type, protocol, netnsPath?, device?)
// AF_NETLINK (with SOCK_RAW, NETLINK_ROUTE) is the interface watcher's socket: it shares the
// receive path (recvmmsg batches to onmessages); its records carry family 0 and no control data.
// AF_UNIX sockets take abstract names in bind() and connect() (a per-namespace lock).
Socket::Socket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Socket>(info) {
  try {
    Open(info);
  } catch (...) {
    // A constructor that throws gets no destructor call (and throws whenever a worker is
    // terminated in the middle of it): let go of the fd and the reference made so far.
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    throw;
  }
}

void Socket::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int family = IntArg(info, 0);
  family_ = family == 4 ? AF_INET : family == AF_NETLINK ? AF_NETLINK : family == AF_UNIX ? AF_UNIX : AF_INET6;
  type_ = IntArg(info, 1);
  const int protocol = IntArg(info, 2);
  const std::string netns = OptionalString(info[3]);
  const std::string device = OptionalString(info[4]);
  {
    NetnsGuard inNamespace(env, netns);
    fd_ = socket(family_, type_ | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd_ < 0) ThrowErrno(env, errno, "socket");
  }
  if (!device.empty() && setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, device.c_str(), device.size()) < 0) {
    const int e = errno;
    close(fd_);
    fd_ = -1;
    ThrowErrno(env, e, "setsockopt");
  }
  async_ = std::make_unique<Napi::AsyncContext>(env, "ip6sock.Socket");
  Addon* addon = GetAddon(env);
  if (addon->callbackNames == nullptr) {
    // Made once per environment, which deletes the reference when it goes.
    Napi::Array names = Napi::Array::New(env, 3);
    names.Set(uint32_t{kOnMessages}, "onmessages");
    names.Set(uint32_t{kOnSent}, "onsent");
    names.Set(uint32_t{kOnConnect}, "onconnect");
    if (napi_create_reference(env, names, 1, &addon->callbackNames) != napi_ok) throw Napi::Error::New(env, "napi_create_reference");
  }
  addon_ = addon;
  addon_->sockets.insert(this);
}


Socket::~Socket() {
  // Reached only when the JavaScript object is unreachable (it is pinned while receiving or
  // while sends are queued), or at environment teardown: never leak the fd.
  ForceClose();
  if (closingPoll_ != nullptr) closingPoll_->owner = nullptr;
  if (addon_ != nullptr) {
    addon_->sockets.erase(this);
    addon_->DeleteIfUnused();
  }
}

namespace {

// The bytes of one Buffer's ArrayBuffer go at once instead of at its collection; every view
// of it becomes empty. Only for buffers nobody may hold a view of.
void DetachBuffer(napi_env env, napi_ref ref) {
  napi_value value, arrayBuffer;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  bool detached = false;
  if (napi_get_reference_value(env, ref, &value) != napi_ok || value == nullptr ||
      napi_get_typedarray_info(env, value, &type, &length, &data, &arrayBuffer, &offset) != napi_ok ||
      napi_is_detached_arraybuffer(env, arrayBuffer, &detached) != napi_ok || detached)
    return;
  napi_detach_arraybuffer(env, arrayBuffer);
}

}  // namespace

// Lets go of the receive pool and metadata buffers. With `detach` (close(), not collection
// or teardown, where nothing may run any more), the ones no view can outlive are freed now.
void Socket::ReleaseReceiveBuffers(bool detach) {
  if (dead_) return;
  napi_env env = Env();
  if (poolRef_ != nullptr) {
    if (detach && !poolPinned_) DetachBuffer(env, poolRef_);
    napi_delete_reference(env, poolRef_);
  }
  if (metaRef_ != nullptr) {
    if (detach) DetachBuffer(env, metaRef_);
    napi_delete_reference(env, metaRef_);
  }
  poolRef_ = nullptr;
  metaRef_ = nullptr;
  poolData_ = nullptr;
  metaData_ = nullptr;
  poolSize_ = poolUsed_ = poolNext_ = metaSize_ = 0;
  poolPinned_ = false;
}

void Socket::ReleaseReceiveScratch() {
  slab_.reset();
  controlSlab_.reset();
  std::vector<sockaddr_storage>().swap(names_);
  std::vector<struct iovec>().swap(iovs_);
  std::vector<struct mmsghdr>().swap(msgs_);
  std::vector<std::pair<const uint8_t*, size_t>>().swap(hopoptsScratch_);
  recvCap_ = 0;
  recvSlot_ = 0;
}

// Frees what the socket holds natively, at close() rather than at collection. Inside
// DrainReceive (a close() from a message callback) the receive side waits for the
// callback to return: DrainReceive releases it then.
void Socket::ReleaseNative(bool detach) {
  std::deque<Outgoing>().swap(queue_);
  queuedBytes_ = 0;
  std::vector<mmsghdr>().swap(sendMsgs_);
  std::vector<iovec>().swap(sendIovs_);
  std::vector<sockaddr_storage>().swap(sendNames_);
  std::vector<uint8_t>().swap(sendControl_);
  std::vector<size_t>().swap(sendControlAt_);
  std::vector<size_t>().swap(sendEntry_);
  std::vector<std::array<uint8_t, 16>>().swap(refBytes_);
  std::vector<int>().swap(refState_);
  if (!draining_) {
    ReleaseReceiveScratch();
    ReleaseReceiveBuffers(detach);
  }
  Account();
}

size_t Socket::NativeBytes() const {
  size_t n = recvCap_ * (recvSlot_ + kRecvControl + sizeof(sockaddr_storage) + sizeof(iovec) + sizeof(mmsghdr));
  n += hopoptsScratch_.capacity() * sizeof(hopoptsScratch_[0]);
  n += queuedBytes_;
  n += sendMsgs_.capacity() * sizeof(mmsghdr) + sendIovs_.capacity() * sizeof(iovec) +
       sendNames_.capacity() * sizeof(sockaddr_storage) + sendControl_.capacity() +
       (sendControlAt_.capacity() + sendEntry_.capacity()) * sizeof(size_t) +
       refBytes_.capacity() * sizeof(refBytes_[0]) + refState_.capacity() * sizeof(int);
  return n;
}

// Tells V8 how the native bytes changed since the last report (napi_adjust_external_memory),
// so that a process with many sockets collects as often as their real memory asks for.
void Socket::Account() {
  if (dead_ || addon_ == nullptr || addon_->tearingDown) return;
  const auto now = static_cast<int64_t>(NativeBytes());
  if (now == reported_) return;
  int64_t total = 0;
  if (napi_adjust_external_memory(Env(), now - reported_, &total) == napi_ok) reported_ = now;
}

void Socket::ForceClose() {
  receiving_ = false;
  connecting_ = false;
  ReleaseNative(false);
  if (poll_ != nullptr) {
    poll_->owner = nullptr;  // the close callback must not reach back into this object
    ClosePollHandle(poll_);
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

void Socket::CheckOpen(Napi::Env env) const {
  if (fd_ < 0) ThrowErrno(env, EBADF, "socket");
}

Napi::Value Socket::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value Socket::GetQueued(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(queue_.size()));
}

// bind(address, port, scopeId)
Napi::Value Socket::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  sockaddr_storage ss;
  const socklen_t len = family_ == AF_UNIX ? AbstractSockaddr(env, info[0].As<Napi::String>().Utf8Value(), &ss)
                                           : ToSockaddr(env, family_, info[0].As<Napi::String>().Utf8Value(), IntArg(info, 1),
                                                        info[2].As<Napi::Number>().Uint32Value(), &ss);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) < 0) ThrowErrno(env, errno, "bind");
  return env.Undefined();
}

// bindNetlink(groups): binds a netlink socket to the multicast groups (RTMGRP_* bits); the
// kernel picks the port id.
Napi::Value Socket::BindNetlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (family_ != AF_NETLINK) ThrowErrno(env, EAFNOSUPPORT, "bind");
  sockaddr_nl sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = info[0].As<Napi::Number>().Uint32Value();
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) ThrowErrno(env, errno, "bind");
  return env.Undefined();
}

// connect(address, port, scopeId) -> true when connected, false when a stream socket's
// connect is in progress (EINPROGRESS: see watchConnect). For datagram sockets this only fixes
// the peer, no packet leaves.
Napi::Value Socket::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  sockaddr_storage ss;
  const socklen_t len = family_ == AF_UNIX ? AbstractSockaddr(env, info[0].As<Napi::String>().Utf8Value(), &ss)
                                           : ToSockaddr(env, family_, info[0].As<Napi::String>().Utf8Value(), IntArg(info, 1),
                                                        info[2].As<Napi::Number>().Uint32Value(), &ss);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) < 0) {
    if (errno == EINPROGRESS && type_ == SOCK_STREAM) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "connect");
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value Socket::Disconnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  ss.ss_family = AF_UNSPEC;
  if (connect(fd_, reinterpret_cast<sockaddr*>(&ss), sizeof(ss)) < 0) ThrowErrno(env, errno, "connect");
  return env.Undefined();
}

Napi::Value Socket::LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) < 0) ThrowErrno(env, errno, "getsockname");
  return FromSockaddr(env, ss);
}

Napi::Value Socket::RemoteAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) < 0) ThrowErrno(env, errno, "getpeername");
  return FromSockaddr(env, ss);
}

// interfaceName(index) -> the name of that interface in the socket's own namespace
// (SIOCGIFNAME), '' if there is none. Unlike a lookup by namespace name, it still works
// after `ip netns delete` removed the name of the namespace the socket lives in.
Napi::Value Socket::InterfaceName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_ifindex = IntArg(info, 0);
  if (ioctl(fd_, SIOCGIFNAME, &ifr) < 0) {
    if (errno == ENODEV) return Napi::String::New(env, "");
    ThrowErrno(env, errno, "ioctl");
  }
  return Napi::String::New(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
}

// setInt(level, name, value)
Napi::Value Socket::SetInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  const int value = IntArg(info, 2);
  if (setsockopt(fd_, IntArg(info, 0), IntArg(info, 1), &value, sizeof(value)) < 0) ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

// getInt(level, name)
Napi::Value Socket::GetInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd_, IntArg(info, 0), IntArg(info, 1), &value, &len) < 0) ThrowErrno(env, errno, "getsockopt");
  return Napi::Number::New(env, value);
}

// setBuffer(level, name, bytes | null): null sets a zero-length value (clears sticky options).
Napi::Value Socket::SetBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  const void* data = nullptr;
  size_t len = 0;
  if (info[2].IsBuffer()) {
    auto b = info[2].As<Napi::Buffer<uint8_t>>();
    data = b.Data();
    len = b.Length();
  }
  if (setsockopt(fd_, IntArg(info, 0), IntArg(info, 1), data, static_cast<socklen_t>(len)) < 0)
    ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

// getBuffer(level, name, maxLength)
Napi::Value Socket::GetBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  std::vector<uint8_t> value(info[2].As<Napi::Number>().Uint32Value());
  socklen_t len = static_cast<socklen_t>(value.size());
  if (getsockopt(fd_, IntArg(info, 0), IntArg(info, 1), value.data(), &len) < 0) ThrowErrno(env, errno, "getsockopt");
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), len);
}

// groupReq(name, ifindex, group, source?): the RFC 3678 MCAST_* options, for both families.
// group_req / group_source_req come from the system headers, never from hand-computed offsets.
Napi::Value Socket::GroupReq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  const int name = IntArg(info, 0);
  const uint32_t ifindex = info[1].As<Napi::Number>().Uint32Value();
  const std::string group = info[2].As<Napi::String>().Utf8Value();
  const std::string source = OptionalString(info[3]);
  const int level = family_ == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
  int rc;
  if (source.empty()) {
    group_req req;
    std::memset(&req, 0, sizeof(req));
    req.gr_interface = ifindex;
    ToSockaddr(env, family_, group, 0, 0, &req.gr_group);
    rc = setsockopt(fd_, level, name, &req, sizeof(req));
  } else {
    group_source_req req;
    std::memset(&req, 0, sizeof(req));
    req.gsr_interface = ifindex;
    ToSockaddr(env, family_, group, 0, 0, &req.gsr_group);
    ToSockaddr(env, family_, source, 0, 0, &req.gsr_source);
    rc = setsockopt(fd_, level, name, &req, sizeof(req));
  }
  if (rc < 0) ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

// ipv6Mreq(name, address, ifindex): IPV6_JOIN_ANYCAST / IPV6_LEAVE_ANYCAST / IPV6_*_GROUP.
Napi::Value Socket::Ipv6Mreq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ipv6_mreq req;
  std::memset(&req, 0, sizeof(req));
  if (ParseAddress(env, info[1].As<Napi::String>().Utf8Value(), &req.ipv6mr_multiaddr) != AF_INET6)
    ThrowErrno(env, EAFNOSUPPORT, "inet_pton");
  req.ipv6mr_interface = info[2].As<Napi::Number>().Uint32Value();
  if (setsockopt(fd_, IPPROTO_IPV6, IntArg(info, 0), &req, sizeof(req)) < 0) ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

// ipMreqn(name, group?, localAddress?, ifindex): IPv4 membership and IP_MULTICAST_IF by index.
Napi::Value Socket::IpMreqn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  ip_mreqn req;
  std::memset(&req, 0, sizeof(req));
  const std::string group = OptionalString(info[1]);
  const std::string local = OptionalString(info[2]);
  unsigned char bytes[16];
  if (!group.empty()) {
    if (ParseAddress(env, group, bytes) != AF_INET) ThrowErrno(env, EAFNOSUPPORT, "inet_pton");
    std::memcpy(&req.imr_multiaddr, bytes, 4);
  }
  if (!local.empty()) {
    if (ParseAddress(env, local, bytes) != AF_INET) ThrowErrno(env, EAFNOSUPPORT, "inet_pton");
    std::memcpy(&req.imr_address, bytes, 4);
  }
  req.imr_ifindex = IntArg(info, 3);
  if (setsockopt(fd_, IPPROTO_IP, IntArg(info, 0), &req, sizeof(req)) < 0) ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

void Socket::EnsurePoll(Napi::Env env) {
  if (poll_ != nullptr) return;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
  auto* handle = new PollHandle{};
  const int rc = uv_poll_init_socket(loop, &handle->poll, fd_);
  if (rc < 0) {
    delete handle;
    ThrowErrno(env, -rc, "uv_poll_init");
  }
  handle->owner = this;
  handle->addon = addon_;
  poll_ = handle;
  pollEvents_ = 0;
  if (!refed_) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->poll));
}

void Socket::UpdatePoll() {
  if (poll_ == nullptr) return;
  const int want = (receiving_ ? UV_READABLE : 0) | (queue_.empty() && !connecting_ ? 0 : UV_WRITABLE);
  if (want == pollEvents_) return;
  pollEvents_ = want;
  if (want == 0)
    uv_poll_stop(&poll_->poll);
  else
    uv_poll_start(&poll_->poll, want, &Socket::OnPoll);
}

// While the kernel may still hand us data or take our queued sends, the JavaScript object
// must stay alive even if user code dropped every reference to it (as a dgram socket does).
// Through the C API: it runs in libuv callbacks too, where a C++ exception (node-addon-api's
// Ref()/Unref() throw on failure) would end the process.
void Socket::UpdatePin() {
  const bool want = fd_ >= 0 && (receiving_ || connecting_ || !queue_.empty());
  if (want == pinned_ || dead_) return;
  auto* ref = static_cast<napi_ref>(*this);
  uint32_t count = 0;
  if ((want ? napi_reference_ref(Env(), ref, &count) : napi_reference_unref(Env(), ref, &count)) == napi_ok) pinned_ = want;
}

// startReceive(batchSize, slotSize, deviceIndex): batches go to this.onmessages. A record
// without a PKTINFO control message names deviceIndex (the device the socket is bound to,
// the only one it hears) as the arrival interface, or none (-1) when it is 0.
Napi::Value Socket::StartReceive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  const size_t batch = std::min<size_t>(info[0].As<Napi::Number>().Uint32Value(), kMaxRecvBatch);
  const size_t slot = info[1].As<Napi::Number>().Uint32Value();
  const int32_t device = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
  arrivalDefault_ = device > 0 ? device : -1;
  // Only remembered: the scratch is laid out (again) by the next read that needs it, never
  // under a batch being delivered (startReceive may be called from inside a callback).
  batch_ = batch > 0 ? batch : 1;
  slot_ = slot;
  EnsurePoll(env);
  receiving_ = true;
  UpdatePoll();
  UpdatePin();
  return env.Undefined();
}

Napi::Value Socket::StopReceive(const Napi::CallbackInfo& info) {
  receiving_ = false;
  UpdatePoll();
  UpdatePin();
  return info.Env().Undefined();
}

bool Socket::Deliver(Callback which, size_t argc, const napi_value* argv, napi_value* returned) {
  napi_env env = Env();
  napi_value callback, self, result, names, name;
  if (returned != nullptr) *returned = nullptr;
  if (dead_ || napi_get_reference_value(env, static_cast<napi_ref>(*this), &self) != napi_ok || self == nullptr ||
      napi_get_reference_value(env, addon_->callbackNames, &names) != napi_ok ||
      napi_get_element(env, names, static_cast<uint32_t>(which), &name) != napi_ok ||
      napi_get_property(env, self, name, &callback) != napi_ok) {
    dead_ = true;
    return false;
  }
  napi_valuetype type;
  if (napi_typeof(env, callback, &type) != napi_ok || type != napi_function) return true;  // nobody listens
  delivering_++;
  const napi_status status = napi_make_callback(env, *async_, self, callback, argc, argv, &result);
  delivering_--;
  if (status == napi_ok) {
    if (returned != nullptr) *returned = result;
    return true;
  }
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    // An exception from a user's event handler goes where Node sends any uncaught exception.
    napi_value exception;
    if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
    return false;
  }
  // JavaScript cannot run any more (a worker being terminated): touch nothing further.
  dead_ = true;
  return false;
}

bool Socket::DeliverError(int err, const char* syscall) {
  napi_env env = Env();
  napi_value argv[4];
  if (napi_create_uint32(env, 0, &argv[0]) != napi_ok || napi_get_undefined(env, &argv[1]) != napi_ok) return false;
  argv[2] = argv[1];
  argv[3] = RawErrnoError(env, err, syscall);
  if (argv[3] == nullptr) return false;
  return Deliver(kOnMessages, 4, argv);
}

// Lays the receive scratch out for `count` messages of slot_ bytes (between batches only:
// the previous batch was copied into the pool).
void Socket::EnsureReceiveScratch(size_t count) {
  if (count == recvCap_ && recvSlot_ == slot_) return;
  ReleaseReceiveScratch();
  slab_.reset(new uint8_t[count * slot_]);
  controlSlab_.reset(new uint8_t[count * kRecvControl]);
  names_.assign(count, sockaddr_storage{});
  iovs_.assign(count, iovec{});
  msgs_.assign(count, mmsghdr{});
  for (size_t i = 0; i < count; i++) {
    iovs_[i].iov_base = slab_.get() + i * slot_;
    iovs_[i].iov_len = slot_;
    msgs_[i].msg_hdr.msg_name = &names_[i];
    msgs_[i].msg_hdr.msg_iov = &iovs_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
    msgs_[i].msg_hdr.msg_control = controlSlab_.get() + i * kRecvControl;
  }
  recvCap_ = count;
  recvSlot_ = slot_;
  Account();
}

void Socket::DrainReceive() {
  // Also when something below throws (bad_alloc, caught in OnPoll). A close() from a callback
  // meanwhile leaves the batch's buffers to FinishClose.
  struct Draining {
    explicit Draining(Socket* s) : self(s) { self->draining_ = true; }
    ~Draining() { self->draining_ = false; }
    Draining(const Draining&) = delete;
    Draining& operator=(const Draining&) = delete;
    Socket* self;
  } draining(this);
  DrainRounds();
}

void Socket::DrainRounds() {
  napi_env env = Env();
  // Room for kFirstBatch messages at first, then twice as many after each read that filled it.
  size_t want = recvCap_ == 0 ? std::min(kFirstBatch, batch_) : std::min(recvCap_, batch_);
  for (int round = 0; round < kMaxRoundsPerEvent && receiving_ && fd_ >= 0; round++) {
    EnsureReceiveScratch(want);
    for (size_t i = 0; i < recvCap_; i++) {
      msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      msgs_[i].msg_hdr.msg_controllen = kRecvControl;
      msgs_[i].msg_hdr.msg_flags = 0;
    }
    const int n = recvmmsg(fd_, msgs_.data(), static_cast<unsigned>(recvCap_), MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      // A pending socket error (ICMP unreachable on a connected socket, ...) is consumed by
      // this call; report it and go on reading.
      RawScope scope(env);
      if (!scope.ok() || !DeliverError(errno, "recvmmsg")) return;
      continue;
    }
    if (n == 0) return;

    RawScope scope(env);
    if (!scope.ok()) return;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += msgs_[i].msg_len;
    napi_value metaValue;
    const bool freshMeta = metaRef_ == nullptr || metaSize_ < recvCap_ * rec::kSize;
    if (freshMeta) metaSize_ = recvCap_ * rec::kSize;
    // A metadata buffer outgrown is never read again: its bytes go now.
    if (freshMeta && metaRef_ != nullptr) DetachBuffer(env, metaRef_);
    if (!HeldBuffer(env, &metaRef_, freshMeta, metaSize_, &metaData_, &metaValue)) return;
    uint8_t* metaData = metaData_;
    std::memset(metaData, 0, static_cast<size_t>(n) * rec::kSize);
    // First pass: metadata and the size of the hop-by-hop headers, which travel in the
    // same data buffer after the payloads.
    std::vector<std::pair<const uint8_t*, size_t>>& hopopts = hopoptsScratch_;
    hopopts.assign(static_cast<size_t>(n), {nullptr, 0});
    for (int i = 0; i < n; i++) {
      uint8_t* r = metaData + static_cast<size_t>(i) * rec::kSize;
      msghdr& h = msgs_[i].msg_hdr;
      PutU32(r + rec::kFlags, static_cast<uint32_t>(h.msg_flags));
      PutI32(r + rec::kIfindex, arrivalDefault_);
      PutI32(r + rec::kHopLimit, -1);
      PutI32(r + rec::kTclass, -1);
      const auto& name = names_[i];
      if (name.ss_family == AF_INET6) {
        const auto* sa = reinterpret_cast<const sockaddr_in6*>(&name);
        PutU16(r + rec::kFamily, 6);
        PutU16(r + rec::kPort, ntohs(sa->sin6_port));
        PutU32(r + rec::kScopeId, sa->sin6_scope_id);
        std::memcpy(r + rec::kSource, &sa->sin6_addr, 16);
      } else if (name.ss_family == AF_INET) {
        const auto* sa = reinterpret_cast<const sockaddr_in*>(&name);
        PutU16(r + rec::kFamily, 4);
        PutU16(r + rec::kPort, ntohs(sa->sin_port));
        std::memcpy(r + rec::kSource, &sa->sin_addr, 4);
      }
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
        const uint8_t* d = CMSG_DATA(c);
        const size_t dlen = c->cmsg_len - CMSG_LEN(0);
        if (c->cmsg_level == IPPROTO_IPV6) {
          if (c->cmsg_type == IPV6_PKTINFO && dlen >= sizeof(in6_pktinfo)) {
            in6_pktinfo pi;
            std::memcpy(&pi, d, sizeof(pi));
            std::memcpy(r + rec::kDestination, &pi.ipi6_addr, 16);
            PutI32(r + rec::kIfindex, static_cast<int32_t>(pi.ipi6_ifindex));
            PutU32(r + rec::kHasDestination, 1);
          } else if (c->cmsg_type == IPV6_HOPLIMIT && dlen >= sizeof(int)) {
            std::memcpy(r + rec::kHopLimit, d, 4);
          } else if (c->cmsg_type == IPV6_TCLASS && dlen >= sizeof(int)) {
            std::memcpy(r + rec::kTclass, d, 4);
          } else if (c->cmsg_type == IPV6_HOPOPTS) {
            hopopts[static_cast<size_t>(i)] = {d, dlen};
            total += dlen;
          }
        } else if (c->cmsg_level == IPPROTO_IP) {
          if (c->cmsg_type == IP_PKTINFO && dlen >= sizeof(in_pktinfo)) {
            in_pktinfo pi;
            std::memcpy(&pi, d, sizeof(pi));
            std::memcpy(r + rec::kDestination, &pi.ipi_addr, 4);
            PutI32(r + rec::kIfindex, pi.ipi_ifindex);
            PutU32(r + rec::kHasDestination, 1);
          } else if (c->cmsg_type == IP_TTL && dlen >= sizeof(int)) {
            std::memcpy(r + rec::kHopLimit, d, 4);
          } else if (c->cmsg_type == IP_TOS && dlen >= 1) {
            PutI32(r + rec::kTclass, d[0]);
          }
        }
      }
    }
    // Second pass: the payloads (and hop-by-hop headers) into the pool, after what earlier
    // batches left there if JavaScript may still hold views of it, else from its start.
    napi_value dataValue;
    if (!poolPinned_) poolUsed_ = 0;
    const bool freshPool = poolRef_ == nullptr || poolUsed_ + total > poolSize_;
    // An outgrown pool nobody holds a view of goes now; a pinned one stays with its views.
    if (freshPool && poolRef_ != nullptr && !poolPinned_) DetachBuffer(env, poolRef_);
    if (freshPool) {
      // Each new pool twice the last: small for a socket that hears little.
      poolNext_ = poolNext_ == 0 ? kPoolFirst : std::min(poolNext_ * 2, kPoolSize);
      while (poolNext_ < kPoolSize && poolNext_ < total) poolNext_ *= 2;
      poolSize_ = std::max(total, poolNext_);
      poolUsed_ = 0;
      poolPinned_ = false;
    }
    if (!HeldBuffer(env, &poolRef_, freshPool, poolSize_, &poolData_, &dataValue)) return;
    uint8_t* data = poolData_;
    size_t at = poolUsed_;
    for (int i = 0; i < n; i++) {
      uint8_t* r = metaData + static_cast<size_t>(i) * rec::kSize;
      const size_t len = msgs_[i].msg_len;
      PutU32(r + rec::kDataOffset, static_cast<uint32_t>(at));
      PutU32(r + rec::kDataLength, static_cast<uint32_t>(len));
      std::memcpy(data + at, iovs_[i].iov_base, len);
      at += len;
      const auto& hop = hopopts[static_cast<size_t>(i)];
      if (hop.second > 0) {
        PutU32(r + rec::kHopOptsOffset, static_cast<uint32_t>(at));
        PutU32(r + rec::kHopOptsLength, static_cast<uint32_t>(hop.second));
        std::memcpy(data + at, hop.first, hop.second);
        at += hop.second;
      }
    }
    // Keep the next batch 8-byte aligned in the pool.
    poolUsed_ = (at + 7) & ~static_cast<size_t>(7);
    napi_value argv[3] = {nullptr, dataValue, metaValue};
    if (napi_create_uint32(env, static_cast<uint32_t>(n), &argv[0]) != napi_ok) return;
    // Pinned unless JavaScript says, with a plain true, that it kept no view of this batch.
    const bool pinnedBefore = poolPinned_;
    poolPinned_ = true;
    napi_value returned;
    const bool delivered = Deliver(kOnMessages, 3, argv, &returned);
    bool released = false;
    if (delivered && returned != nullptr && napi_get_value_bool(env, returned, &released) == napi_ok && released) {
      poolPinned_ = pinnedBefore;
    }
    if (!delivered) return;
    if (static_cast<size_t>(n) < recvCap_) return;
    // The kernel had more than room: next time, room for twice as many.
    want = std::min(recvCap_ * 2, batch_);
  }
}

// Appends the control messages for one send: PKTINFO (ifindex > 0 and/or a source
// address), hop limit, traffic class (each -1 for none) and a hop-by-hop header.
void Socket::AppendControl(std::vector<uint8_t>* control, int ifindex, const uint8_t* source, int hopLimit,
                           int tclass, const uint8_t* hopopts, size_t hopoptsLength) const {
  if (family_ == AF_INET6) {
    if (ifindex >= 0 || source != nullptr) {
      in6_pktinfo pi;
      std::memset(&pi, 0, sizeof(pi));
      pi.ipi6_ifindex = ifindex > 0 ? static_cast<unsigned>(ifindex) : 0;
      if (source != nullptr) std::memcpy(&pi.ipi6_addr, source, 16);
      AddControl(control, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
    }
    if (hopLimit >= 0) AddControl(control, IPPROTO_IPV6, IPV6_HOPLIMIT, &hopLimit, sizeof(hopLimit));
    if (tclass >= 0) AddControl(control, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof(tclass));
    if (hopopts != nullptr) AddControl(control, IPPROTO_IPV6, IPV6_HOPOPTS, hopopts, hopoptsLength);
  } else {
    if (ifindex >= 0 || source != nullptr) {
      in_pktinfo pi;
      std::memset(&pi, 0, sizeof(pi));
      pi.ipi_ifindex = ifindex > 0 ? ifindex : 0;
      if (source != nullptr) std::memcpy(&pi.ipi_spec_dst, source, 4);
      AddControl(control, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
    }
    if (hopLimit >= 0) AddControl(control, IPPROTO_IP, IP_TTL, &hopLimit, sizeof(hopLimit));
    if (tclass >= 0) AddControl(control, IPPROTO_IP, IP_TOS, &tclass, sizeof(tclass));
  }
}

// The address bytes of refs[index] (a string), parsed once per batch; 0 or an errno.
int Socket::RefAddress(napi_env env, napi_value refs, int32_t index, const uint8_t** out) {
  const auto i = static_cast<size_t>(index);
  if (index < 0 || i >= refState_.size()) return EINVAL;
  if (refState_[i] == 0) {
    refState_[i] = EINVAL;
    napi_value v;
    char text[INET6_ADDRSTRLEN + 1];
    size_t length = 0;
    if (napi_get_element(env, refs, static_cast<uint32_t>(index), &v) == napi_ok &&
        napi_get_value_string_utf8(env, v, text, sizeof(text), &length) == napi_ok && length < INET6_ADDRSTRLEN) {
      const int family = AddressFamilyOf(text, refBytes_[i].data());
      if (family == (family_ == AF_INET6 ? AF_INET6 : AF_INET)) refState_[i] = -1;
      else if (family != 0) refState_[i] = EAFNOSUPPORT;
    }
  }
  if (refState_[i] > 0) return refState_[i];
  *out = refBytes_[i].data();
  return 0;
}

// sendBatch(data, plan, refs, count)
// Sends `count` datagrams with sendmmsg, in order, straight from the JavaScript buffers in
// `data` (no copy unless one has to wait). plan holds plan::kFields int32 per datagram:
// address ref (-1 on a connected socket), port, scope id, ifindex (-1 none), source ref
// (-1 none), hop limit (-1), traffic class (-1), hop-by-hop ref (-1); refs holds the address
// strings and hop-by-hop Buffers the plan points at. Each datagram's result goes into its
// plan entry's result field: bytes sent, a negative errno, or kSendQueued when it waits in
// the backpressure queue (reported later via onsent, with the plan entry's id).
Napi::Value Socket::SendBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_value list = info[0];
  napi_value refs = info[2];
  const size_t count = info[3].As<Napi::Number>().Uint32Value();
  auto planArray = info[1].As<Napi::Int32Array>();
  if (planArray.ElementLength() < count * plan::kFields) throw Napi::RangeError::New(env, "sendBatch: plan too short");
  int32_t* planData = planArray.Data();
  // Each datagram's result goes into its own plan entry: no array is made per batch.
  auto result = [planData](size_t i) -> int32_t& { return planData[i * plan::kFields + plan::kResult]; };
  uint32_t refCount = 0;
  napi_get_array_length(env, refs, &refCount);

  if (fd_ < 0) {
    for (size_t i = 0; i < count; i++) result(i) = uv_translate_sys_error(EBADF);
    return env.Undefined();
  }
  refState_.assign(refCount, 0);
  refBytes_.resize(refCount);
  sendMsgs_.resize(count);
  sendIovs_.resize(count);
  sendNames_.resize(count);
  sendControlAt_.resize(count);
  sendEntry_.clear();
  sendControl_.clear();

  // Gather: one msghdr per datagram that can go; a datagram whose refs do not parse fails alone.
  for (size_t i = 0; i < count; i++) {
    const int32_t* p = planData + i * plan::kFields;
    result(i) = 0;
    napi_value item;
    void* bytes = nullptr;
    size_t length = 0;
    if (napi_get_element(env, list, static_cast<uint32_t>(i), &item) != napi_ok ||
        napi_get_buffer_info(env, item, &bytes, &length) != napi_ok) {
      result(i) = uv_translate_sys_error(EINVAL);
      continue;
    }
    const size_t k = sendEntry_.size();
    socklen_t nameLength = 0;
    if (p[plan::kAddressRef] >= 0) {
      const uint8_t* address = nullptr;
      if (const int err = RefAddress(env, refs, p[plan::kAddressRef], &address)) {
        result(i) = uv_translate_sys_error(err);
        continue;
      }
      nameLength = FillSockaddr(family_ == AF_INET6 ? AF_INET6 : AF_INET, address, p[plan::kPort],
                                static_cast<uint32_t>(p[plan::kScopeId]), &sendNames_[k]);
    }
    const uint8_t* source = nullptr;
    if (p[plan::kSourceRef] >= 0) {
      if (const int err = RefAddress(env, refs, p[plan::kSourceRef], &source)) {
        result(i) = uv_translate_sys_error(err);
        continue;
      }
    }
    const uint8_t* hopopts = nullptr;
    size_t hopoptsLength = 0;
    if (p[plan::kHopOptsRef] >= 0) {
      napi_value header;
      void* headerBytes = nullptr;
      if (napi_get_element(env, refs, static_cast<uint32_t>(p[plan::kHopOptsRef]), &header) != napi_ok ||
          napi_get_buffer_info(env, header, &headerBytes, &hopoptsLength) != napi_ok) {
        result(i) = uv_translate_sys_error(EINVAL);
        continue;
      }
      hopopts = static_cast<const uint8_t*>(headerBytes);
    }
    sendControlAt_[k] = sendControl_.size();
    AppendControl(&sendControl_, p[plan::kIfindex], source, p[plan::kHopLimit], p[plan::kTclass], hopopts, hopoptsLength);
    const size_t controlLength = sendControl_.size() - sendControlAt_[k];
    sendIovs_[k] = iovec{bytes, length};
    msghdr& h = sendMsgs_[k].msg_hdr;
    std::memset(&h, 0, sizeof(h));
    h.msg_name = nameLength ? &sendNames_[k] : nullptr;
    h.msg_namelen = nameLength;
    h.msg_iov = &sendIovs_[k];
    h.msg_iovlen = 1;
    h.msg_controllen = controlLength;
    sendEntry_.push_back(i);
  }
  // The control bytes have stopped moving: point each message at its own.
  const size_t ready = sendEntry_.size();
  for (size_t k = 0; k < ready; k++) {
    msghdr& h = sendMsgs_[k].msg_hdr;
    h.msg_control = h.msg_controllen ? sendControl_.data() + sendControlAt_[k] : nullptr;
  }

  size_t k = 0;
  while (k < ready && queue_.empty()) {
    const size_t chunk = std::min(ready - k, kMaxSendBatch);
    const int sent = sendmmsg(fd_, &sendMsgs_[k], static_cast<unsigned>(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent > 0) {
      for (size_t j = 0; j < static_cast<size_t>(sent); j++) result(sendEntry_[k + j]) = static_cast<int32_t>(sendMsgs_[k + j].msg_len);
      k += static_cast<size_t>(sent);
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // sendmmsg stops at the first datagram that fails: that one gets the error.
    result(sendEntry_[k]) = uv_translate_sys_error(sent < 0 ? errno : EIO);
    k++;
  }
  if (k < ready) {
    // Behind a full send buffer (or datagrams already waiting): copies wait, in order.
    EnsurePoll(env);
    for (; k < ready; k++) {
      const msghdr& h = sendMsgs_[k].msg_hdr;
      Outgoing out;
      out.id = planData[sendEntry_[k] * plan::kFields + plan::kId];
      const auto* data = static_cast<const uint8_t*>(sendIovs_[k].iov_base);
      out.data.assign(data, data + sendIovs_[k].iov_len);
      out.toLen = h.msg_namelen;
      if (out.toLen) std::memcpy(&out.to, h.msg_name, out.toLen);
      const auto* control = static_cast<const uint8_t*>(h.msg_control);
      if (control != nullptr) out.control.assign(control, control + h.msg_controllen);
      queuedBytes_ += sizeof(Outgoing) + out.data.size() + out.control.size();
      queue_.push_back(std::move(out));
      result(sendEntry_[k]) = kSendQueued;
    }
    UpdatePoll();
    UpdatePin();
  }
  Account();
  return env.Undefined();
}

// Sends queued datagrams while the kernel takes them, at most kMaxSendBatch per call: once
// a blocked path clears, the kernel may take a whole backlog of 100,000 at once, and sending
// it all from one poll callback (and settling every promise in one call) would hold the event
// loop for that long. The queue stays non-empty, so UV_WRITABLE stays watched and libuv calls
// again on the next turn of the loop, after timers and I/O of others had theirs.
void Socket::FlushQueue() {
  napi_env env = Env();
  // (id, result) of each datagram that left or failed: JavaScript matches them to their
  // promises by id, so nothing depends on both sides keeping the same order.
  std::vector<int32_t> results;
  results.reserve(2 * std::min(queue_.size(), kMaxFlushBatch));
  while (!queue_.empty() && fd_ >= 0 && results.size() < 2 * kMaxFlushBatch) {
    Outgoing& out = queue_.front();
    iovec iov{out.data.data(), out.data.size()};
    msghdr h{};
    h.msg_name = out.toLen ? &out.to : nullptr;
    h.msg_namelen = out.toLen;
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = out.control.empty() ? nullptr : out.control.data();
    h.msg_controllen = out.control.size();
    const ssize_t rc = sendmsg(fd_, &h, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (rc < 0 && errno == EINTR) continue;
    results.push_back(out.id);
    results.push_back(rc >= 0 ? static_cast<int32_t>(rc) : uv_translate_sys_error(errno));
    queuedBytes_ -= sizeof(Outgoing) + out.data.size() + out.control.size();
    queue_.pop_front();
  }
  if (queue_.empty()) std::deque<Outgoing>().swap(queue_);  // a drained queue holds no blocks
  Account();
  UpdatePoll();
  if (results.empty()) return;
  RawScope scope(env);
  if (!scope.ok()) return;
  napi_value arrayBuffer, array;
  void* bytes = nullptr;
  if (napi_create_arraybuffer(env, results.size() * sizeof(int32_t), &bytes, &arrayBuffer) != napi_ok ||
      napi_create_typedarray(env, napi_int32_array, results.size(), arrayBuffer, 0, &array) != napi_ok)
    return;
  std::memcpy(bytes, results.data(), results.size() * sizeof(int32_t));
  // Unpin only after JavaScript has seen the results.
  Deliver(kOnSent, 1, &array);
  UpdatePin();
}

void Socket::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = reinterpret_cast<PollHandle*>(handle)->owner;
  if (self == nullptr || self->fd_ < 0 || self->dead_) return;
  // No C++ exception may leave a libuv callback (std::terminate): the work below talks to
  // JavaScript through the C API only, and anything else thrown (bad_alloc) ends here.
  try {
    self->HandlePoll(status, events);
  } catch (...) {
    (void)0;  // nothing to report it to from here; the next event tries again
  }
  // Closed by a callback: what close() had to leave to the callback goes now. The object
  // is still pinned here, so it cannot be collected under this frame.
  self->FinishClose();
}

// The last of close(), once no callback into JavaScript is running on this socket: the
// receive buffers (and their views) of a batch being delivered, the async context, and the
// pin, so that a closed socket becomes collectable at once rather than when libuv calls back
// for its poll handle (a loop of `await close()` never lets libuv run).
void Socket::FinishClose() {
  if (fd_ >= 0 || delivering_ > 0 || draining_ || dead_) return;
  if (addon_ != nullptr && addon_->tearingDown) return;
  RawScope scope(Env());
  if (!scope.ok()) return;
  ReleaseReceiveScratch();
  ReleaseReceiveBuffers(true);
  Account();
  async_.reset();
  UpdatePin();
}

void Socket::HandlePoll(int status, int events) {
  if (connecting_ && (status < 0 || (events & UV_WRITABLE) != 0)) {
    // Writable, or EPOLLERR (UV_EBADF, which also stopped the handle): the connect is over.
    if (status == UV_EBADF) pollEvents_ = 0;
    FinishConnect();
    return;
  }
  if (status == UV_EBADF) {
    // libuv reports EPOLLERR as UV_EBADF and stops the handle. Our fd is open, so it is a
    // pending socket error: a netlink overrun (ENOBUFS), an ICMP error on a connected UDP
    // socket. Left alone the socket would go silent. The receive path reads the error
    // (consuming it) and reports it; a socket not reading consumes it with SO_ERROR. Then
    // watch again. (An error queue, IPV6_RECVERR, would keep EPOLLERR set until read with
    // MSG_ERRQUEUE; no socket here enables it.)
    pollEvents_ = 0;
    if (receiving_) {
      DrainReceive();
    } else {
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
        RawScope scope(Env());
        if (scope.ok()) DeliverError(err, "uv_poll");
      }
    }
    if (fd_ >= 0 && !dead_) UpdatePoll();
    return;
  }
  if (status < 0) {
    RawScope scope(Env());
    if (scope.ok()) DeliverError(-status, "uv_poll");
    return;
  }
  if ((events & UV_WRITABLE) != 0) FlushQueue();
  if ((events & UV_READABLE) != 0 && fd_ >= 0) DrainReceive();
}

void Socket::ClosePollHandle(PollHandle* handle) {
  // Counted, so that environment teardown can wait for every close callback: they are
  // code in this library, which Node may unload once the environment is gone.
  handle->addon->closingHandles++;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle->poll), [](uv_handle_t* h) {
    auto* closed = reinterpret_cast<PollHandle*>(h);
    Socket* self = closed->owner;
    Addon* addon = closed->addon;
    delete closed;
    if (self != nullptr) {
      self->closingPoll_ = nullptr;
      // The object stayed pinned until the handle was gone, so a close() made inside a
      // message callback never frees the object under the callback's feet.
      if (!addon->tearingDown && !self->dead_) {
        RawScope scope(self->Env());
        if (scope.ok()) self->UpdatePin();  // C API only: nothing here throws
      }
    }
    addon->closingHandles--;
    addon->FinishTeardownIfDone();
  });
}

void Socket::ClosePoll() {
  if (poll_ == nullptr) return;
  closingPoll_ = poll_;
  ClosePollHandle(poll_);
  poll_ = nullptr;
}

// listen(backlog): for stream sockets made in a namespace and handed to Node's net module.
Napi::Value Socket::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (listen(fd_, IntArg(info, 0)) < 0) ThrowErrno(env, errno, "listen");
  return env.Undefined();
}

// watchConnect(): after a non-blocking connect() of a stream socket said EINPROGRESS, waits
// for its outcome on the loop and calls this.onconnect(error) once: undefined when connected,
// else the 'connect' system error (SO_ERROR). The object stays alive meanwhile.
Napi::Value Socket::WatchConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (type_ != SOCK_STREAM) ThrowErrno(env, EOPNOTSUPP, "connect");
  EnsurePoll(env);
  connecting_ = true;
  UpdatePoll();
  UpdatePin();
  return env.Undefined();
}

void Socket::FinishConnect() {
  connecting_ = false;
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  UpdatePoll();
  {
    RawScope scope(Env());
    napi_value argv[1] = {nullptr};
    if (scope.ok()) {
      if (err == 0)
        napi_get_undefined(Env(), &argv[0]);
      else
        argv[0] = RawErrnoError(Env(), err, "connect");
      if (argv[0] != nullptr) Deliver(kOnConnect, 1, argv);
    }
  }
  // Unpinned only now: the callback ran with the object certainly alive.
  if (!dead_) UpdatePin();
}

// duplicate() -> fd: a second descriptor of the same socket (close-on-exec), for Node's net
// module, while this object keeps its own (to watch a connect in progress).
Napi::Value Socket::Duplicate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  const int fd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, errno, "fcntl");
  return Napi::Number::New(env, fd);
}

// detach() -> fd: gives the descriptor away (to net.Server/net.Socket); this object forgets it.
Napi::Value Socket::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (poll_ != nullptr || receiving_ || connecting_ || !queue_.empty()) ThrowErrno(env, EBUSY, "detach");
  const int fd = fd_;
  fd_ = -1;
  ReleaseNative(true);
  return Napi::Number::New(env, fd);
}

Napi::Value Socket::Close(const Napi::CallbackInfo& info) {
  receiving_ = false;
  connecting_ = false;
  ReleaseNative(true);  // now, not when the object is collected
  ClosePoll();  // stops polling before the fd number can be reused
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  FinishClose();  // unless a callback of this socket is running: then when it has returned
  return info.Env().Undefined();
}

Napi::Value Socket::Ref(const Napi::CallbackInfo& info) {
  refed_ = true;
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->poll));
  return info.Env().Undefined();
}

Napi::Value Socket::Unref(const Napi::CallbackInfo& info) {
  refed_ = false;
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->poll));
  return info.Env().Undefined();
}

}  // namespace ip6sock
