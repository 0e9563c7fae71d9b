#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ip6sock {

napi_value RawErrnoError(napi_env env, int err, const char* syscall) {
  // libuv's names are Node's names ('EADDRNOTAVAIL'), and its errno values are Node's (-99).
  const int uverr = uv_translate_sys_error(err);
  const char* code = uv_err_name(uverr);
  const char* description = uv_strerror(uverr);
  const std::string message = std::string(syscall) + " " + code + ": " + description;
  napi_value msg, codeValue, errnoValue, syscallValue, descriptionValue, error;
  if (napi_create_string_utf8(env, message.c_str(), message.size(), &msg) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codeValue) != napi_ok ||
      napi_create_int32(env, uverr, &errnoValue) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscallValue) != napi_ok ||
      napi_create_string_utf8(env, description, NAPI_AUTO_LENGTH, &descriptionValue) != napi_ok ||
      napi_create_error(env, nullptr, msg, &error) != napi_ok ||
      napi_set_named_property(env, error, "code", codeValue) != napi_ok ||
      napi_set_named_property(env, error, "errno", errnoValue) != napi_ok ||
      napi_set_named_property(env, error, "syscall", syscallValue) != napi_ok ||
      napi_set_named_property(env, error, "description", descriptionValue) != napi_ok)
    return nullptr;
  return error;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  napi_value error = RawErrnoError(env, err, syscall);
  if (error == nullptr) return Napi::Error::New(env, syscall);
  return Napi::Error(env, error);
}

void ThrowErrno(Napi::Env env, int err, const char* syscall) { throw ErrnoError(env, err, syscall); }

NetnsGuard::NetnsGuard(Napi::Env env, const std::string& path) {
  if (path.empty()) return;
  home_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home_ < 0) ThrowErrno(env, errno, "open");
  const int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    const int e = errno;
    close(home_);
    home_ = -1;
    ThrowErrno(env, e, "open");
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    const int e = errno;
    close(target);
    close(home_);
    home_ = -1;
    ThrowErrno(env, e, "setns");
  }
  close(target);
}

NetnsGuard::~NetnsGuard() {
  if (home_ < 0) return;
  if (setns(home_, CLONE_NEWNET) < 0) {
    // The thread that runs JavaScript would stay in a foreign namespace and every later
    // socket would be created there: no safe way on, so stop loudly.
    // uv_strerror, not strerror: this may run on a worker thread.
    (void)std::fprintf(stderr, "ip6sock: cannot return to the original network namespace: %s\n", uv_strerror(-errno));
    std::abort();
  }
  close(home_);
}

std::string OptionalString(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return std::string();
  return v.As<Napi::String>().Utf8Value();
}

int AddressFamilyOf(const char* text, void* out16) {
  if (inet_pton(AF_INET6, text, out16) == 1) return AF_INET6;
  if (inet_pton(AF_INET, text, out16) == 1) return AF_INET;
  return 0;
}

int ParseAddress(Napi::Env env, const std::string& address, void* out16) {
  const int family = AddressFamilyOf(address.c_str(), out16);
  if (family == 0) ThrowErrno(env, EINVAL, "inet_pton");
  return family;
}

socklen_t FillSockaddr(int family, const void* bytes, int port, uint32_t scopeId, sockaddr_storage* out) {
  std::memset(out, 0, sizeof(*out));
  if (family == AF_INET6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(out);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sa->sin6_addr, bytes, 16);
    sa->sin6_scope_id = scopeId;
    return sizeof(sockaddr_in6);
  }
  auto* sa = reinterpret_cast<sockaddr_in*>(out);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(static_cast<uint16_t>(port));
  std::memcpy(&sa->sin_addr, bytes, 4);
  return sizeof(sockaddr_in);
}

socklen_t ToSockaddr(Napi::Env env, int family, const std::string& address, int port, uint32_t scopeId,
                     sockaddr_storage* out) {
  unsigned char bytes[16];
  const int parsed = ParseAddress(env, address, bytes);
  if (family != AF_UNSPEC && parsed != family) ThrowErrno(env, EAFNOSUPPORT, "inet_pton");
  return FillSockaddr(parsed, bytes, port, scopeId, out);
}

Napi::Object FromSockaddr(Napi::Env env, const sockaddr_storage& ss) {
  Napi::Object o = Napi::Object::New(env);
  char text[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET6) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sa->sin6_addr, text, sizeof(text));
    o.Set("family", 6);
    o.Set("port", ntohs(sa->sin6_port));
    o.Set("scopeId", sa->sin6_scope_id);
  } else if (ss.ss_family == AF_INET) {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sa->sin_addr, text, sizeof(text));
    o.Set("family", 4);
    o.Set("port", ntohs(sa->sin_port));
    o.Set("scopeId", 0);
  } else {
    o.Set("family", 0);
    o.Set("port", 0);
    o.Set("scopeId", 0);
  }
  o.Set("address", text);
  return o;
}

Addon* GetAddon(Napi::Env env) { return env.GetInstanceData<Addon>(); }

}  // namespace ip6sock
