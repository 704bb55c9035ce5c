// SPDX-License-Identifier: MIT
// Tier-up (tiered.h): two code versions, an atomic pointer to the current one, and per version
// a count of the calls in flight. A caller counts itself in and then checks that its version is
// still current (else it counts itself out and retries), so once the pointer has moved, no new
// call can enter the old version; the worker frees the old code when its count drains to 0.
#include "exojit/vcode/tiered.h"

#include "exojit/error.h"

namespace exojit::vcode {

struct TieredCode::Version {
  Code code;
  void* entry = nullptr;
  Tier tier = Tier::Fast;
  std::atomic<int64_t> in_flight{0};
};

TieredCode::TieredCode(Module m, std::string name, TierUpOptions options)
    : module_(std::move(m)), name_(std::move(name)), options_(options) {
  int fi = module_.find_function(name_);
  if (fi < 0) fail("Tiered: the module has no function @{}", name_);
  sig_ = module_.functions()[size_t(fi)]->sig;
  fast_ = std::make_unique<Version>();
  CompileOptions fast = options_.fast;
  fast.tier = Tier::Fast;
  fast_->code = compile(module_, fast);
  fast_->entry = fast_->code.entry(name_);
  current_.store(fast_.get());
}

TieredCode::~TieredCode() {
  if (worker_.joinable()) worker_.join();
}

Tier TieredCode::tier() const {
  return current_.load()->tier;
}

uint64_t TieredCode::calls() const {
  return calls_.load(std::memory_order_relaxed);
}

const Signature& TieredCode::signature() const {
  return sig_;
}

std::string TieredCode::error() const {
  std::lock_guard<std::mutex> g(lock_);
  return error_;
}

TieredCode::Entry TieredCode::enter() {
  uint64_t n = calls_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n == options_.after_calls) tier_up();
  for (;;) {
    Version* v = current_.load();
    v->in_flight.fetch_add(1);
    if (current_.load() == v) return Entry{v->entry, v};
    v->in_flight.fetch_sub(1);  // moved meanwhile: take the new one
  }
}

void TieredCode::leave(Version* v) {
  v->in_flight.fetch_sub(1);
}

void TieredCode::tier_up() {
  if (started_.exchange(true)) return;
  worker_ = std::thread([this] { recompile(); });
}

void TieredCode::wait() {
  if (!started_.load()) return;
  std::unique_lock<std::mutex> g(lock_);
  done_cv_.wait(g, [this] { return done_; });
}

void TieredCode::recompile() {
  std::string why;
  try {
    auto v = std::make_unique<Version>();
    CompileOptions llvm = options_.fast;
    llvm.tier = Tier::Llvm;
    llvm.llvm_opt_level = options_.llvm_opt_level;
    v->code = compile(module_, llvm);
    v->entry = v->code.entry(name_);
    v->tier = Tier::Llvm;
    llvm_ = std::move(v);
    current_.store(llvm_.get());
    // No call can enter the fast code any more; wait for those inside it, then free it.
    while (fast_->in_flight.load() != 0) std::this_thread::yield();
    fast_->code = Code();
  } catch (const std::exception& e) {
    why = e.what();
  }
  std::lock_guard<std::mutex> g(lock_);
  error_ = why;
  done_ = true;
  done_cv_.notify_all();
}

}  // namespace exojit::vcode
