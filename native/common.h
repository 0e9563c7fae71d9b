// Shared pieces of the native layer: errno -> Node-style errors, network-namespace entry,
// socket-address conversion and the per-environment addon state.
#pragma once

#include <napi.h>
#include <uv.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <set>
#include <string>

namespace ip6sock {

class Socket;

// Builds an Error shaped like Node's own system errors: code 'EPERM', errno -1,
// syscall 'setsockopt', description 'operation not permitted'. lib/errors.ts adds context.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

// The same error through the C API only, for libuv callbacks: nullptr when it cannot be
// built (an environment being torn down), where node-addon-api would abort the process.
napi_value RawErrnoError(napi_env env, int err, const char* syscall);

// A handle scope that reports failure instead of aborting (see RawErrnoError).
class RawScope {
 public:
  explicit RawScope(napi_env env) : env_(env) {
    if (napi_open_handle_scope(env, &scope_) != napi_ok) scope_ = nullptr;
  }
  ~RawScope() {
    if (scope_ != nullptr) napi_close_handle_scope(env_, scope_);
  }
  bool ok() const { return scope_ != nullptr; }
  RawScope(const RawScope&) = delete;
  RawScope& operator=(const RawScope&) = delete;

 private:
  napi_env env_;
  napi_handle_scope scope_ = nullptr;
};

// Throws ErrnoError as a C++ exception (node-addon-api turns it into a JS throw).
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall);

// Enters the network namespace at `path` for the guard's lifetime, on the calling thread
// only. Sockets created meanwhile stay in that namespace for their whole life. An empty
// path means "stay where we are". The original namespace is restored on every exit path.
class NetnsGuard {
 public:
  NetnsGuard(Napi::Env env, const std::string& path);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  int home_ = -1;
};

// Reads an optional string argument (undefined or null -> empty).
std::string OptionalString(const Napi::Value& v);

// Parses a textual address into a sockaddr of the given family (AF_INET6 or AF_INET;
// AF_UNSPEC guesses from the text). Throws EINVAL-coded errors for malformed text.
socklen_t ToSockaddr(Napi::Env env, int family, const std::string& address, int port, uint32_t scopeId,
                     sockaddr_storage* out);

// Parses a textual address into raw bytes (16 for IPv6, 4 for IPv4); returns the family.
int ParseAddress(Napi::Env env, const std::string& address, void* out16);

// ParseAddress without throwing: AF_INET6, AF_INET, or 0 for text that is neither.
int AddressFamilyOf(const char* text, void* out16);

// A sockaddr of `family` (AF_INET6 or AF_INET) from raw address bytes; returns its length.
socklen_t FillSockaddr(int family, const void* bytes, int port, uint32_t scopeId, sockaddr_storage* out);

// { address, port, family, scopeId } for a sockaddr.
Napi::Object FromSockaddr(Napi::Env env, const sockaddr_storage& ss);

// Per-environment state: every open Socket, so that an environment being torn down
// (worker exit, process exit) closes their fds and poll handles.
struct Addon {
  std::set<Socket*> sockets;
  bool tearingDown = false;
  bool released = false;  // the environment let go of it; the last user deletes it
  int closingHandles = 0;  // uv_close() calls whose callback has not run yet
  napi_async_cleanup_hook_handle teardownHook = nullptr;
  // ["onmessages", "onsent", "onconnect"] as JavaScript strings made once per environment
  // (see Socket::Deliver); deleted by the teardown hook.
  napi_ref callbackNames = nullptr;
  napi_env env = nullptr;

  // Lets environment teardown go on once every handle we closed has called back.
  void FinishTeardownIfDone() {
    if (tearingDown && closingHandles == 0 && teardownHook != nullptr) {
      napi_remove_async_cleanup_hook(teardownHook);
      teardownHook = nullptr;
    }
    DeleteIfUnused();
  }

  void DeleteIfUnused() {
    if (released && sockets.empty() && closingHandles == 0) delete this;
  }
};

Addon* GetAddon(Napi::Env env);

}  // namespace ip6sock
