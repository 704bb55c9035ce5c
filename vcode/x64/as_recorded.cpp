// SPDX-License-Identifier: MIT
// Lowering as the builder records, on x86-64 (../src/as_recorded_p.h): the X64Emitter fed one
// record at a time, started over when the frame the records lay out changes, and the check that
// lets compile() install its code.
#include <cstring>

#include "../src/debug/code_debug_p.h"
#include "as_recorded_p.h"
#include "exojit/vcode/code.h"

namespace exojit::vcode::detail {

void RecordLoweringDeleter::operator()(RecordLowering* l) const {
  delete l;
}

RecordLoweringPtr start_record_lowering(const Module& m, const CompileOptions& options) {
  if (options.target != Target::X86_64 || options.tier != Tier::Fast ||
      debug_request(options).notes() || m.functions().size() != 1)
    return nullptr;
  std::optional<BlindKey> key;
  if (options.blind_constants) key = fresh_blind_key();
  return RecordLoweringPtr(new RecordLowering(m, x64_features(options), key));
}

bool lower_new_records(RecordLowering& l, const Function& f) {
  try {
    l.lower(f);
    return true;
  } catch (const Error&) {
    return false;  // compile() lowers the records and reports the error
  }
}

bool lowering_blinds(const RecordLowering& l) {
  return l.blinds();
}

std::shared_ptr<RecordedCode> finish_record_lowering(RecordLowering& l, const Function& f) {
  try {
    return l.finish(f);
  } catch (const Error&) {
    return nullptr;
  }
}

namespace {

bool same(const X64Features& a, const X64Features& b) {
  return a.movbe == b.movbe && a.bmi2 == b.bmi2 && a.avx == b.avx && a.avx2 == b.avx2 &&
         a.sse41 == b.sse41 && a.sse42 == b.sse42 && a.max_code_bytes == b.max_code_bytes;
}
bool same(const RegInfo& a, const RegInfo& b) {
  return a.type == b.type && a.cls == b.cls && a.slot == b.slot;
}
bool same(const LocalInfo& a, const LocalInfo& b) {
  return a.size == b.size && a.align == b.align;
}
bool same(const Signature& a, const Signature& b) {
  return a.ret == b.ret && a.params == b.params;
}
bool same(const Extern& a, const Extern& b) {
  return a.address == b.address && same(a.sig, b.sig);
}
template <typename T>
bool same(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i])) return false;
  return true;
}

}  // namespace

std::optional<MachineCode> take_recorded_code(const Module& m, const X64Features& features,
                                              bool blind) {
  if (m.functions().size() != 1) return std::nullopt;
  const Function& f = *m.functions()[0];
  RecordedCode* rc = f.recorded.get();
  if (!rc || !f.verified || rc->taken.load(std::memory_order_relaxed)) return std::nullopt;
  if (!same(rc->features, features) || rc->blinded != blind) return std::nullopt;
  static_assert(sizeof(Insn) == 24 && std::has_unique_object_representations_v<Insn>);
  if (f.code.size() != rc->records.size() ||
      std::memcmp(f.code.data(), rc->records.data(), f.code.size() * sizeof(Insn)) != 0)
    return std::nullopt;
  if (!same(f.regs, rc->regs) || !same(f.locals, rc->locals) || f.params != rc->params ||
      !same(f.sig, rc->sig) || !same(m.externs(), rc->externs))
    return std::nullopt;
  try {
    if (!(x64::frame_layout(f, x64::ops_of(f), features.avx2) == rc->frame)) return std::nullopt;
  } catch (const Error&) {
    return std::nullopt;
  }
  if (rc->taken.exchange(true)) return std::nullopt;
  return std::move(rc->code);
}

}  // namespace exojit::vcode::detail

namespace exojit::vcode {

bool has_code_as_recorded(const Function& f) {
  return f.recorded && !f.recorded->taken.load();
}

}  // namespace exojit::vcode
