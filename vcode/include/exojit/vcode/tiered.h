// SPDX-License-Identifier: MIT
// Tier-up: a function that starts on the fast tier (code in microseconds) and is recompiled on
// the LLVM tier (better code, milliseconds) in a background thread once it has been called often
// enough, or on request. Callers switch over atomically; the fast tier's code is freed only when
// no call can still be running in it.
//
//   Tiered<uint16_t(const uint8_t*, uint64_t)> cksum(std::move(module), "cksum",
//                                                    {.after_calls = 1000});
//   uint16_t sum = cksum(buf, len);  // fast tier now, the LLVM tier after 1,000 calls
//
// Each call costs two atomic read-modify-writes on top of the generated code (the count of calls
// in flight that keeps the code alive). Thread-safe: any number of threads may call.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "exojit/vcode/code.h"

namespace exojit::vcode {

struct TierUpOptions {
  uint64_t after_calls = 1000;  // recompile once this many calls were made (0: only on request)
  int llvm_opt_level = 2;
  CompileOptions fast;  // options of the first, fast-tier compilation
};

// The untyped core of Tiered<F>.
class TieredCode {
 public:
  // Compiles function `name` of `m` on the fast tier at once (errors are thrown here).
  TieredCode(Module m, std::string name, TierUpOptions options = {});
  ~TieredCode();  // waits for a recompilation in progress
  TieredCode(const TieredCode&) = delete;
  TieredCode& operator=(const TieredCode&) = delete;

  Tier tier() const;       // the tier new calls go to
  void tier_up();          // starts the recompilation now (in the background) if not yet done
  void wait();             // until a started recompilation has finished (and the old code is gone)
  uint64_t calls() const;  // calls made so far
  const Signature& signature() const;
  const std::string& name() const { return name_; }
  // Why the LLVM tier could not be used ("" if it could): the function then stays on the fast
  // tier.
  std::string error() const;

  // The call protocol of Tiered<F>: enter() returns the code to call and keeps it alive until
  // leave().
  struct Version;
  struct Entry {
    void* address;
    Version* version;
  };
  Entry enter();
  static void leave(Version* v);

 private:
  void recompile();

  Module module_;
  std::string name_;
  TierUpOptions options_;
  Signature sig_;
  std::unique_ptr<Version> fast_, llvm_;
  std::atomic<Version*> current_{nullptr};
  std::atomic<uint64_t> calls_{0};
  std::atomic<bool> started_{false};
  mutable std::mutex lock_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::string error_;
  std::thread worker_;
};

template <typename F>
class Tiered;

template <typename R, typename... A>
class Tiered<R(A...)> {
 public:
  Tiered(Module m, std::string name, TierUpOptions options = {})
      : core_(std::move(m), std::move(name), options) {
    Code::check_signature_of<R(A...)>(core_.signature(), core_.name());
  }

  R operator()(A... args) {
    TieredCode::Entry e = core_.enter();
    struct Leave {
      TieredCode::Version* v;
      ~Leave() { TieredCode::leave(v); }
    } leave{e.version};
    return reinterpret_cast<R (*)(A...)>(e.address)(args...);
  }

  TieredCode& core() { return core_; }
  Tier tier() const { return core_.tier(); }

 private:
  TieredCode core_;
};

}  // namespace exojit::vcode
