// One kernel socket: creation (optionally inside a network namespace), addresses, options,
// and event-loop I/O. Policy (validation, defaults, bookkeeping) lives in lib/.
#pragma once

#include "common.h"

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace ip6sock {

// Layout of one received-message record in the metadata buffer handed to JavaScript.
// lib/core/native.ts mirrors these offsets; change both together.
namespace rec {
constexpr size_t kDataOffset = 0;     // u32 offset of the payload in the batch's data buffer
constexpr size_t kDataLength = 4;     // u32 payload bytes
constexpr size_t kFlags = 8;          // u32 msg_flags (MSG_TRUNC 0x20, MSG_CTRUNC 0x08)
constexpr size_t kFamily = 12;        // u16 6 or 4
constexpr size_t kPort = 14;          // u16 source port (0 for raw sockets)
constexpr size_t kScopeId = 16;       // u32 source scope id
constexpr size_t kIfindex = 20;       // i32 arrival interface (PKTINFO), -1 unknown
constexpr size_t kHopLimit = 24;      // i32 hop limit / TTL, -1 unknown
constexpr size_t kTclass = 28;        // i32 traffic class / TOS, -1 unknown
constexpr size_t kHopOptsOffset = 32; // u32 offset of the hop-by-hop header in the data buffer
constexpr size_t kHopOptsLength = 36; // u32 its length, 0 when absent
constexpr size_t kSource = 40;        // 16 bytes source address (IPv4: first 4)
constexpr size_t kDestination = 56;   // 16 bytes destination address from PKTINFO
constexpr size_t kHasDestination = 72;// u32 1 when PKTINFO was present
constexpr size_t kSize = 76;
}  // namespace rec

// Layout of one datagram's entry in sendBatch's plan, in int32 fields; -1 means "none" for
// every field but port and scope id. lib/core/native.ts mirrors these; change both together.
namespace plan {
constexpr size_t kAddressRef = 0;   // index in refs of the destination text (-1: connected)
constexpr size_t kPort = 1;
constexpr size_t kScopeId = 2;
constexpr size_t kIfindex = 3;      // IPV6_PKTINFO / IP_PKTINFO interface
constexpr size_t kSourceRef = 4;    // index in refs of the source address text
constexpr size_t kHopLimit = 5;
constexpr size_t kTclass = 6;
constexpr size_t kHopOptsRef = 7;   // index in refs of a hop-by-hop header Buffer
constexpr size_t kResult = 8;       // written by sendBatch: bytes sent, -errno, or queued
constexpr size_t kFields = 9;
}  // namespace plan

// A poll handle and who it belongs to; the handle outlives a closed Socket until libuv's
// close callback, so the owner link is cleared when the Socket goes first.
struct PollHandle {
  uv_poll_t poll;  // first member: libuv hands back &poll
  Socket* owner;
  Addon* addon;
};

class Socket : public Napi::ObjectWrap<Socket> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Socket(const Napi::CallbackInfo& info);
  ~Socket() override;
  // The fd and the poll handle belong to exactly one JavaScript object.
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Closes fd and poll handle without touching JavaScript (environment teardown).
  void ForceClose();

 private:
  struct Outgoing {
    std::vector<uint8_t> data;
    sockaddr_storage to;
    socklen_t toLen;
    std::vector<uint8_t> control;
  };

  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetQueued(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value BindNetlink(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value RemoteAddress(const Napi::CallbackInfo& info);
  Napi::Value InterfaceName(const Napi::CallbackInfo& info);
  Napi::Value SetInt(const Napi::CallbackInfo& info);
  Napi::Value GetInt(const Napi::CallbackInfo& info);
  Napi::Value SetBuffer(const Napi::CallbackInfo& info);
  Napi::Value GetBuffer(const Napi::CallbackInfo& info);
  Napi::Value GroupReq(const Napi::CallbackInfo& info);
  Napi::Value Ipv6Mreq(const Napi::CallbackInfo& info);
  Napi::Value IpMreqn(const Napi::CallbackInfo& info);
  Napi::Value StartReceive(const Napi::CallbackInfo& info);
  Napi::Value StopReceive(const Napi::CallbackInfo& info);
  Napi::Value SendBatch(const Napi::CallbackInfo& info);
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value WatchConnect(const Napi::CallbackInfo& info);
  Napi::Value Duplicate(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);

  void CheckOpen(Napi::Env env) const;
  void EnsurePoll(Napi::Env env);
  void UpdatePoll();
  void UpdatePin();
  void ClosePoll();
  // Everything close() gives back: receive scratch, pool, records, queued sends, send scratch.
  void ReleaseNative(bool detach);
  void FinishClose();
  void ReleaseReceiveBuffers(bool detach);
  void EnsureReceiveScratch(size_t count);
  void ReleaseReceiveScratch();
  void DrainRounds();
  // The native bytes this socket holds, reported to V8 so that collection pressure matches them.
  size_t NativeBytes() const;
  void Account();
  static void ClosePollHandle(PollHandle* handle);
  void DrainReceive();
  void FlushQueue();
  void AppendControl(std::vector<uint8_t>* control, int ifindex, const uint8_t* source, int hopLimit, int tclass,
                     const uint8_t* hopopts, size_t hopoptsLength) const;
  int RefAddress(napi_env env, napi_value refs, int32_t index, const uint8_t** out);
  enum Callback { kOnMessages = 0, kOnSent = 1, kOnConnect = 2 };
  // Calls this.onmessages(...), this.onsent(...) or this.onconnect(...) from a libuv
  // callback; false when it threw or can no longer run. The callbacks live as properties of
  // the JavaScript object (as in Node's own handles) rather than in persistent references, so
  // a socket nobody holds can be collected and its fd closed by the finalizer. `returned`
  // (optional) gets what the callback returned.
  bool Deliver(Callback which, size_t argc, const napi_value* argv, napi_value* returned = nullptr);
  bool DeliverError(int err, const char* syscall);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void HandlePoll(int status, int events);
  void Open(const Napi::CallbackInfo& info);
  void FinishConnect();

  int fd_ = -1;
  int family_ = 0;
  int type_ = 0;
  PollHandle* poll_ = nullptr;
  PollHandle* closingPoll_ = nullptr;  // closed, waiting for its close callback
  int pollEvents_ = 0;
  bool receiving_ = false;
  bool connecting_ = false;  // a stream connect() in progress, watched for its outcome
  bool refed_ = true;
  bool pinned_ = false;
  bool dead_ = false;  // JavaScript can no longer run in this environment
  Addon* addon_ = nullptr;

  std::unique_ptr<Napi::AsyncContext> async_;

  // Receive scratch: room for `recvCap_` messages of `slot_` bytes each. Nothing is allocated
  // until the first readable event; it starts at one message and doubles (up to `batch_`,
  // the batch size asked for) only while reads fill it, so an idle socket holds nothing and
  // a busy one holds what its traffic uses. close() frees it at once.
  size_t batch_ = 0;
  size_t slot_ = 0;
  size_t recvCap_ = 0;
  size_t recvSlot_ = 0;  // slot_ when the scratch was laid out
  // Arrival interface of a record without PKTINFO: the bound device's index, or -1.
  int32_t arrivalDefault_ = -1;
  std::unique_ptr<uint8_t[]> slab_;         // left uninitialised: untouched pages cost no memory
  std::unique_ptr<uint8_t[]> controlSlab_;  // the kernel writes it; only msg_controllen is read
  std::vector<sockaddr_storage> names_;
  std::vector<struct iovec> iovs_;
  std::vector<struct mmsghdr> msgs_;
  // Inside DrainReceive: a close() from a callback leaves the buffers the batch in flight
  // uses (and JavaScript's views of it) alone until the callback has returned.
  bool draining_ = false;
  int delivering_ = 0;  // callbacks into JavaScript running (nested ones count too)
  // Bytes last reported with napi_adjust_external_memory.
  int64_t reported_ = 0;
  // Bytes of the datagrams waiting in queue_.
  size_t queuedBytes_ = 0;

  std::deque<Outgoing> queue_;

  // sendBatch scratch, reused so that a warm send path allocates nothing per datagram.
  std::vector<mmsghdr> sendMsgs_;
  std::vector<iovec> sendIovs_;
  std::vector<sockaddr_storage> sendNames_;
  std::vector<uint8_t> sendControl_;
  std::vector<size_t> sendControlAt_;
  std::vector<size_t> sendEntry_;  // message k of sendMsgs_ is datagram sendEntry_[k] of the batch
  std::vector<std::array<uint8_t, 16>> refBytes_;
  std::vector<int> refState_;  // per ref: 0 not parsed yet, -1 parsed, else the errno

  // Received data goes into a pool buffer handed to JavaScript whole; a new pool starts
  // when a batch does not fit, each twice the size of the last (from a few KiB up to a
  // limit), so a socket that hears little holds a small one. Bytes JavaScript may hold a
  // view of are never rewritten: the pool is pinned unless the callback returned true for
  // every batch in it ("no view of this batch's data outlived the call"), and an unpinned
  // pool is rewritten from its start, so a receiver that only looks at its data in the
  // callback allocates nothing. The metadata buffer is reused: JavaScript reads it only
  // during the callback.
  // The pool and the metadata buffer are JavaScript's memory (V8 frees them and counts
  // them). close() drops the socket's references and detaches each buffer nobody may hold
  // a view of (the metadata always, the pool unless pinned), which frees its bytes at once;
  // a pinned pool stays valid for the views the user kept and goes with the last of them.
  napi_ref poolRef_ = nullptr;
  uint8_t* poolData_ = nullptr;
  size_t poolSize_ = 0;
  size_t poolUsed_ = 0;
  size_t poolNext_ = 0;  // size of the next pool (0: the smallest)
  bool poolPinned_ = false;
  napi_ref metaRef_ = nullptr;
  // Where each batch's hop-by-hop headers are, between DrainReceive's two passes.
  std::vector<std::pair<const uint8_t*, size_t>> hopoptsScratch_;
  uint8_t* metaData_ = nullptr;
  size_t metaSize_ = 0;
};

}  // namespace ip6sock
