// colo-proxy tap addon: Linux TAP devices for Node with batched, copy-free frame I/O.
//
// Error policy (see native/README.md):
// - Cold paths (open, close, argument mistakes) throw JS errors. System-call failures carry
//   `errno` (number), `code` (e.g. "EPERM") and `syscall`, so the TS wrapper can turn them
//   into typed ColoErrors.
// - Hot paths (read, write, readBatch, writeBatch) never throw because of the kernel:
//   "nothing pending" and I/O failures come back as return values. They only throw for
//   programming errors (wrong argument types, offsets outside the given memory), which are
//   checked once per call before any system call touches memory.
//
// C++ exceptions are enabled (node_addon_api_except): a Napi::Error thrown from a function
// becomes the JS exception of that call.

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace {

// ---------------------------------------------------------------------------------------------
// Error helpers

Napi::Error SysError(Napi::Env env, int err, const char* syscall, const std::string& what) {
  std::string msg = what + ": " + syscall + " failed: " + std::strerror(err) + " (" + uv_err_name(-err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, uv_err_name(-err)));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& msg) {
  throw Napi::RangeError::New(env, msg);
}

int32_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  // Integers only: a fractional offset or length is always a caller bug.
  if (!(d >= INT32_MIN && d <= INT32_MAX) || static_cast<double>(static_cast<int32_t>(d)) != d) {
    ThrowRange(info.Env(), std::string(name) + " must be a 32-bit integer");
  }
  return static_cast<int32_t>(d);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  int32_t fd = ArgInt(info, i, "fd");
  if (fd < 0) ThrowRange(info.Env(), "fd must be a non-negative file descriptor");
  return fd;
}

// One napi_get_typedarray_info call checks the type and yields data pointer and length.
struct Bytes {
  uint8_t* data;
  size_t len;
};

Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_status st = napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr);
  if (st != napi_ok || type != napi_uint8_array) ThrowType(info.Env(), std::string(name) + " must be a Uint8Array or Buffer");
  return Bytes{static_cast<uint8_t*>(data), length};
}

struct Ints {
  int32_t* data;
  size_t len;
};

Ints ArgInts(const Napi::CallbackInfo& info, size_t i, const char* name) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_status st = napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr);
  if (st != napi_ok || type != napi_int32_array) ThrowType(info.Env(), std::string(name) + " must be an Int32Array");
  return Ints{static_cast<int32_t*>(data), length};
}

// [off, off+len) must lie inside a buffer of `size` bytes.
bool InBounds(int64_t off, int64_t len, size_t size) {
  return off >= 0 && len >= 0 && off + len <= static_cast<int64_t>(size);
}

// EINTR is retried; every other failure is reported to the caller.
ssize_t ReadOnce(int fd, uint8_t* p, size_t cap) {
  ssize_t r;
  do r = ::read(fd, p, cap);
  while (r < 0 && errno == EINTR);
  return r;
}

ssize_t WriteOnce(int fd, const uint8_t* p, size_t len) {
  ssize_t r;
  do r = ::write(fd, p, len);
  while (r < 0 && errno == EINTR);
  return r;
}

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// ---------------------------------------------------------------------------------------------
// open / close

// open(name, { vnetHdr?, vnetHdrLen?, multiQueue? }) -> { fd, name }
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  // IFNAMSIZ includes the terminating NUL; the kernel would silently truncate otherwise.
  if (name.size() >= IFNAMSIZ) {
    ThrowRange(env, "interface name \"" + name + "\" is longer than " + std::to_string(IFNAMSIZ - 1) + " bytes");
  }
  if (name.find('\0') != std::string::npos) ThrowRange(env, "interface name contains a NUL byte");
  bool vnet = false;
  bool multi = false;
  int32_t vnetLen = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject()) ThrowType(env, "options must be an object");
    Napi::Object o = info[1].As<Napi::Object>();
    vnet = o.Get("vnetHdr").ToBoolean().Value();
    multi = o.Get("multiQueue").ToBoolean().Value();
    Napi::Value vl = o.Get("vnetHdrLen");
    if (!vl.IsUndefined()) {
      if (!vl.IsNumber()) ThrowType(env, "vnetHdrLen must be a number");
      vnetLen = vl.As<Napi::Number>().Int32Value();
      // The kernel accepts >= sizeof(struct virtio_net_hdr); QEMU uses 10 or 12.
      if (vnetLen < 10 || vnetLen > 64) ThrowRange(env, "vnetHdrLen must be between 10 and 64, got " + std::to_string(vnetLen));
    }
  }
  const std::string what = "tap \"" + name + "\"";
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw SysError(env, errno, "open(/dev/net/tun)", what);
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (vnet) ifr.ifr_flags |= IFF_VNET_HDR;
  if (multi) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    ::close(fd);
    throw SysError(env, err, "ioctl(TUNSETIFF)", what);
  }
  if (vnet && vnetLen != 0) {
    int sz = vnetLen;
    if (::ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int err = errno;
      ::close(fd);
      throw SysError(env, err, "ioctl(TUNSETVNETHDRSZ)", what);
    }
  }
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  // The kernel fills in the real name (e.g. "tap%d" templates, or "" -> "tap0").
  out.Set("name", Napi::String::New(env, ifr.ifr_name));
  return out;
}

// close(fd): cold path, throws on failure (EBADF means a double close in our own code).
Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  if (::close(fd) < 0 && errno != EINTR) throw SysError(info.Env(), errno, "close", "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Single-frame I/O

// read(fd, buf, off, cap) -> bytes >= 0; -1 when nothing is pending (EAGAIN); -errno (< -1)
// for any other failure. tun silently cuts a frame longer than the buffer and returns `cap`,
// so a result equal to `cap` means "possibly truncated" (pass one byte more than the largest
// frame you accept).
Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  Bytes b = ArgBytes(info, 1, "buf");
  int32_t off = ArgInt(info, 2, "off");
  int32_t cap = ArgInt(info, 3, "cap");
  if (!InBounds(off, cap, b.len)) ThrowRange(env, "read: [off, off+cap) is outside buf");
  ssize_t r = ReadOnce(fd, b.data + off, static_cast<size_t>(cap));
  if (r >= 0) return Napi::Number::New(env, static_cast<double>(r));
  int err = errno;
  return Napi::Number::New(env, WouldBlock(err) ? -1 : -err);
}

// write(fd, buf, off, len) -> bytes written; -1 when the queue is full (EAGAIN); -errno for
// any other failure (e.g. -EIO while the interface is down, -EINVAL for a runt frame).
Napi::Value Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  Bytes b = ArgBytes(info, 1, "buf");
  int32_t off = ArgInt(info, 2, "off");
  int32_t len = ArgInt(info, 3, "len");
  if (!InBounds(off, len, b.len)) ThrowRange(env, "write: [off, off+len) is outside buf");
  ssize_t r = WriteOnce(fd, b.data + off, static_cast<size_t>(len));
  if (r >= 0) return Napi::Number::New(env, static_cast<double>(r));
  int err = errno;
  return Napi::Number::New(env, WouldBlock(err) ? -1 : -err);
}

// ---------------------------------------------------------------------------------------------
// Batched I/O: one N-API call moves up to `max` frames through caller-provided memory.

// readBatch(fd, slab, offsets, cap, lens, max) -> n
// Reads frame i into slab[offsets[i] .. offsets[i]+cap) and stores its length in lens[i],
// until `max` frames are read or the device has nothing more (EAGAIN). Returns the number of
// frames read (0 when nothing was pending). If the very first read fails for another reason,
// returns -errno; a failure after some frames returns the count (the next call reports it).
// lens[i] == cap means frame i may have been truncated (see read).
Napi::Value ReadBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  Bytes slab = ArgBytes(info, 1, "slab");
  Ints offs = ArgInts(info, 2, "offsets");
  int32_t cap = ArgInt(info, 3, "cap");
  Ints lens = ArgInts(info, 4, "lens");
  int32_t max = ArgInt(info, 5, "max");
  if (max < 0 || static_cast<size_t>(max) > offs.len || static_cast<size_t>(max) > lens.len) {
    ThrowRange(env, "readBatch: max must be within 0..min(offsets.length, lens.length)");
  }
  if (cap <= 0) ThrowRange(env, "readBatch: cap must be positive");
  // Validate every slot before the first system call, so a bad offset never half-reads.
  for (int32_t i = 0; i < max; i++) {
    if (!InBounds(offs.data[i], cap, slab.len)) {
      ThrowRange(env, "readBatch: offsets[" + std::to_string(i) + "]=" + std::to_string(offs.data[i]) + " + cap is outside slab");
    }
  }
  int32_t n = 0;
  while (n < max) {
    ssize_t r = ReadOnce(fd, slab.data + offs.data[n], static_cast<size_t>(cap));
    if (r < 0) {
      int err = errno;
      if (n == 0 && !WouldBlock(err)) return Napi::Number::New(env, -err);
      break;
    }
    lens.data[n++] = static_cast<int32_t>(r);
  }
  return Napi::Number::New(env, n);
}

// writeBatch(fd, slab, offsets, lens, n) -> written
// Writes frames slab[offsets[i] .. +lens[i]) for i < n in order. Stops at the first frame the
// kernel does not take: EAGAIN stops and returns the count so far; another error on the
// first frame returns -errno (the caller then skips that frame), after some frames the count.
Napi::Value WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  Bytes slab = ArgBytes(info, 1, "slab");
  Ints offs = ArgInts(info, 2, "offsets");
  Ints lens = ArgInts(info, 3, "lens");
  int32_t n = ArgInt(info, 4, "n");
  if (n < 0 || static_cast<size_t>(n) > offs.len || static_cast<size_t>(n) > lens.len) {
    ThrowRange(env, "writeBatch: n must be within 0..min(offsets.length, lens.length)");
  }
  for (int32_t i = 0; i < n; i++) {
    if (!InBounds(offs.data[i], lens.data[i], slab.len)) {
      ThrowRange(env, "writeBatch: frame " + std::to_string(i) + " (offset " + std::to_string(offs.data[i]) + ", length " +
                          std::to_string(lens.data[i]) + ") is outside slab");
    }
  }
  int32_t done = 0;
  while (done < n) {
    ssize_t r = WriteOnce(fd, slab.data + offs.data[done], static_cast<size_t>(lens.data[done]));
    if (r < 0) {
      int err = errno;
      if (done == 0 && !WouldBlock(err)) return Napi::Number::New(env, -err);
      break;
    }
    done++;
  }
  return Napi::Number::New(env, done);
}

// ---------------------------------------------------------------------------------------------
// poll(fd, callback) -> Poller { pause(), resume(), stop(), ref(), unref() }
//
// A uv_poll_t on Node's own event loop: `callback(status)` runs on the JS thread whenever the
// fd is readable (status 0) or polling failed (status = negative libuv error code, e.g. -9 for
// EBADF). libuv polls level-triggered, so a callback that does not drain the fd is called
// again on the next loop turn: pause() while the consumer cannot take frames.
//
// Lifetime: the uv handle and the JS references live in a heap PollState that is freed only in
// uv_close's callback, so stop() may be called from inside the callback. An active poller keeps
// its JS object alive (like a socket); stop() releases it. An env teardown (worker exit) closes
// the handle through a cleanup hook.

struct PollState {
  uv_poll_t handle;
  napi_env env = nullptr;
  Napi::FunctionReference callback;
  Napi::ObjectReference self;  // the Poller object, strong while active
  Napi::AsyncContext* async = nullptr;
  bool active = false;   // uv_poll_start'ed
  bool closing = false;  // uv_close requested
  bool inCallback = false;
  bool releasePending = false;
};

void OnClosed(uv_handle_t* h) { delete static_cast<PollState*>(h->data); }

// Drops the JS references; must run on the JS thread while the env is alive.
void ReleaseRefs(PollState* s) {
  if (s->async != nullptr) {
    delete s->async;
    s->async = nullptr;
  }
  s->callback.Reset();
  s->self.Reset();
}

void EnvCleanup(void* arg);

void CloseState(PollState* s) {
  if (s->closing) return;
  s->closing = true;
  s->active = false;
  napi_remove_env_cleanup_hook(s->env, EnvCleanup, s);
  uv_poll_stop(&s->handle);
  // Deleting the async context while its own callback scope is open is not allowed; the
  // callback trampoline releases it after MakeCallback returns.
  if (s->inCallback) s->releasePending = true;
  else ReleaseRefs(s);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->handle), OnClosed);
}

void EnvCleanup(void* arg) {
  PollState* s = static_cast<PollState*>(arg);
  if (s->closing) return;
  s->closing = true;
  s->active = false;
  uv_poll_stop(&s->handle);
  ReleaseRefs(s);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->handle), OnClosed);
}

void OnPoll(uv_poll_t* h, int status, int /*events*/) {
  PollState* s = static_cast<PollState*>(h->data);
  if (s->closing) return;
  Napi::Env env(s->env);
  Napi::HandleScope scope(env);
  s->inCallback = true;
  try {
    s->callback.MakeCallback(env.Global(), {Napi::Number::New(env, status)}, *s->async);
  } catch (const Napi::Error& e) {
    // The JS callback threw: hand it to process 'uncaughtException' like any event callback.
    napi_fatal_exception(s->env, e.Value());
  }
  s->inCallback = false;
  if (s->releasePending) {
    s->releasePending = false;
    ReleaseRefs(s);
  }
}

class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod<&Poller::Pause>("pause"), InstanceMethod<&Poller::Resume>("resume"),
                        InstanceMethod<&Poller::Stop>("stop"), InstanceMethod<&Poller::RefLoop>("ref"),
                        InstanceMethod<&Poller::UnrefLoop>("unref")});
  }

  explicit Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {}

  ~Poller() override {
    // Only reachable after stop() (an active poller is strongly referenced), or at env
    // teardown, where the cleanup hook has already closed the handle.
    state_ = nullptr;
  }

  void Start(Napi::Env env, int fd, Napi::Function cb) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "poll: cannot get the event loop");
    }
    PollState* s = new PollState();
    s->env = env;
    int r = uv_poll_init(loop, &s->handle, fd);
    if (r < 0) {
      delete s;
      throw SysError(env, -r, "uv_poll_init", "poll fd " + std::to_string(fd));
    }
    s->handle.data = s;
    r = uv_poll_start(&s->handle, UV_READABLE, OnPoll);
    if (r < 0) {
      s->closing = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&s->handle), OnClosed);
      throw SysError(env, -r, "uv_poll_start", "poll fd " + std::to_string(fd));
    }
    s->active = true;
    s->callback = Napi::Persistent(cb);
    s->self = Napi::Persistent(Value());
    s->async = new Napi::AsyncContext(env, "colo:tap-poll", Value());
    napi_add_env_cleanup_hook(env, EnvCleanup, s);
    state_ = s;
  }

 private:
  PollState* Live(const Napi::CallbackInfo& info, const char* op) {
    if (state_ == nullptr || state_->closing) {
      throw Napi::Error::New(info.Env(), std::string("poller.") + op + "(): poller is stopped");
    }
    return state_;
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    PollState* s = Live(info, "pause");
    if (s->active) {
      uv_poll_stop(&s->handle);
      s->active = false;
    }
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    PollState* s = Live(info, "resume");
    if (!s->active) {
      int r = uv_poll_start(&s->handle, UV_READABLE, OnPoll);
      if (r < 0) throw SysError(info.Env(), -r, "uv_poll_start", "poller.resume()");
      s->active = true;
    }
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    // Idempotent: stopping twice is harmless (close paths run in any order).
    if (state_ != nullptr && !state_->closing) CloseState(state_);
    state_ = nullptr;
    return info.Env().Undefined();
  }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&Live(info, "ref")->handle));
    return info.Env().Undefined();
  }

  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    uv_unref(reinterpret_cast<uv_handle_t*>(&Live(info, "unref")->handle));
    return info.Env().Undefined();
  }

  PollState* state_ = nullptr;
};

struct AddonData {
  Napi::FunctionReference pollerCtor;
};

Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  if (!info[1].IsFunction()) ThrowType(env, "poll: callback must be a function");
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::Object obj = data->pollerCtor.New({});
  Poller* p = Poller::Unwrap(obj);
  p->Start(env, fd, info[1].As<Napi::Function>());
  return obj;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  AddonData* data = new AddonData();
  data->pollerCtor = Napi::Persistent(Poller::Init(env));
  env.SetInstanceData(data);
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("readBatch", Napi::Function::New(env, ReadBatch, "readBatch"));
  exports.Set("writeBatch", Napi::Function::New(env, WriteBatch, "writeBatch"));
  exports.Set("poll", Napi::Function::New(env, Poll, "poll"));
  // errno values the TS side compares results against (platform constants, not guesses).
  Napi::Object errnos = Napi::Object::New(env);
  errnos.Set("EAGAIN", Napi::Number::New(env, EAGAIN));
  errnos.Set("EIO", Napi::Number::New(env, EIO));
  errnos.Set("EINVAL", Napi::Number::New(env, EINVAL));
  errnos.Set("EBADF", Napi::Number::New(env, EBADF));
  errnos.Set("EBADFD", Napi::Number::New(env, EBADFD));
  errnos.Set("EPERM", Napi::Number::New(env, EPERM));
  exports.Set("errno", errnos);
  return exports;
}

}  // namespace

NODE_API_MODULE(tap, Init)
