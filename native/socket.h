// One kernel socket: creation (optionally inside a network namespace), addresses, options,
// and event-loop I/O. Policy (validation, defaults, bookkeeping) lives in lib/.
#pragma once

#include "common.h"

#include <sys/uio.h>

#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace ip6sock {

// One received message's record in the metadata buffer handed to JavaScript, in host byte
// order: the one definition of the format. The addon exports every field's offset and the
// size (layouts.record, addon.cc); lib/core/native.ts reads them from there, so a change
// here needs no change in lib/ unless a field is added or removed.
struct MessageRecord {
  uint32_t dataOffset;      // offset of the payload in the batch's data buffer
  uint32_t dataLength;      // payload bytes
  uint32_t flags;           // msg_flags (MSG_TRUNC, MSG_CTRUNC)
  uint16_t family;          // 6 or 4 (0 for netlink)
  uint16_t port;            // source port (0 for raw sockets)
  uint32_t scopeId;         // source scope id
  int32_t ifindex;          // arrival interface (PKTINFO), -1 unknown
  int32_t hopLimit;         // hop limit / TTL, -1 unknown
  int32_t tclass;           // traffic class / TOS, -1 unknown
  uint32_t hopOptsOffset;   // offset of the hop-by-hop header in the data buffer
  uint32_t hopOptsLength;   // its length, 0 when absent
  uint8_t source[16];       // source address (IPv4: first 4 bytes)
  uint8_t destination[16];  // destination address from PKTINFO
  uint32_t hasDestination;  // 1 when PKTINFO was present
};
static_assert(sizeof(MessageRecord) % 4 == 0, "records are read as int32 words");

// Offsets of MessageRecord's fields, for writing them into a buffer that is only bytes.
namespace rec {
constexpr size_t kDataOffset = offsetof(MessageRecord, dataOffset);
constexpr size_t kDataLength = offsetof(MessageRecord, dataLength);
constexpr size_t kFlags = offsetof(MessageRecord, flags);
constexpr size_t kFamily = offsetof(MessageRecord, family);
constexpr size_t kPort = offsetof(MessageRecord, port);
constexpr size_t kScopeId = offsetof(MessageRecord, scopeId);
constexpr size_t kIfindex = offsetof(MessageRecord, ifindex);
constexpr size_t kHopLimit = offsetof(MessageRecord, hopLimit);
constexpr size_t kTclass = offsetof(MessageRecord, tclass);
constexpr size_t kHopOptsOffset = offsetof(MessageRecord, hopOptsOffset);
constexpr size_t kHopOptsLength = offsetof(MessageRecord, hopOptsLength);
constexpr size_t kSource = offsetof(MessageRecord, source);
constexpr size_t kDestination = offsetof(MessageRecord, destination);
constexpr size_t kHasDestination = offsetof(MessageRecord, hasDestination);
constexpr size_t kSize = sizeof(MessageRecord);
}  // namespace rec

// One datagram's entry in sendBatch's plan, all int32; -1 means "none" for every field but
// port, scope id and id. Exported the same way (layouts.sendPlan, in int32 fields).
struct SendPlanEntry {
  int32_t addressRef;  // index in refs of the destination text (-1: connected)
  int32_t port;
  int32_t scopeId;
  int32_t ifindex;     // IPV6_PKTINFO / IP_PKTINFO interface
  int32_t sourceRef;   // index in refs of the source address text
  int32_t hopLimit;
  int32_t tclass;
  int32_t hopOptsRef;  // index in refs of a hop-by-hop header Buffer
  int32_t id;          // chosen by JavaScript; onsent reports a queued datagram's result with it
  int32_t result;      // written by sendBatch: bytes sent, -errno, or kSendQueued
};

namespace plan {
constexpr size_t kAddressRef = offsetof(SendPlanEntry, addressRef) / 4;
constexpr size_t kPort = offsetof(SendPlanEntry, port) / 4;
constexpr size_t kScopeId = offsetof(SendPlanEntry, scopeId) / 4;
constexpr size_t kIfindex = offsetof(SendPlanEntry, ifindex) / 4;
constexpr size_t kSourceRef = offsetof(SendPlanEntry, sourceRef) / 4;
constexpr size_t kHopLimit = offsetof(SendPlanEntry, hopLimit) / 4;
constexpr size_t kTclass = offsetof(SendPlanEntry, tclass) / 4;
constexpr size_t kHopOptsRef = offsetof(SendPlanEntry, hopOptsRef) / 4;
constexpr size_t kId = offsetof(SendPlanEntry, id) / 4;
constexpr size_t kResult = offsetof(SendPlanEntry, result) / 4;
constexpr size_t kFields = sizeof(SendPlanEntry) / 4;
}  // namespace plan

// sendBatch() result of a datagram that went to the backpressure queue: its result comes
// later through onsent, with its id. No byte count or -errno can be INT32_MIN.
constexpr int32_t kSendQueued = INT32_MIN;

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
    int32_t id;  // the plan's id: onsent reports the result with it
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
