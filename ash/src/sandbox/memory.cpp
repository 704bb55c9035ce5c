// SPDX-License-Identifier: MIT
// Loads and stores of application memory (lowerer_p.h): confined to the region's pages mapped
// with the access, translated through the software TLB, offsets masked after their checks
// (Spectre v1); Trusted: base + a constant delta.
#include <vector>

#include "lowerer_p.h"

namespace exojit::ash::sandbox {

using vcode::Insn;
using vcode::Op;

// Hardening (Spectre v1): right after the branch that checked x <= limit, x &= (x <= limit ?
// ~0 : 0) with m as the mask's register, so that a mispredicted check accesses offset 0 of
// what it guards, never past it.
void Lowerer::mask_offset(Reg x, Reg m, int64_t limit) {
  if (!o_.harden) return;
  emit(Op::BoundMask, type(x), vcode::kImm, m.id, x.id, 0, limit);
  bin(Op::And, x, x, m);
}

Op Lowerer::unaligned(Op op) {
  if (op == Op::Ld) return Op::Ldu;
  if (op == Op::St) return Op::Stu;
  return op;
}

// A load or store of application memory: confined to the region's mapped pages.
//
// Checked: the full check (region bounds, software TLB, page crossing) leaves the page's host
// address in s1 and the offset in the page in s0. A later access through the same base
// register with a constant displacement, in the same straight-line code and of the same kind
// (read/write), reuses them: it only checks that it stays in that page (the region is whole
// pages, so the page is inside it), and takes the full check out of line when it does not.
void Lowerer::app_access(const Insn& x) {
  const int64_t size = vcode::type_bytes(x.type);
  Reg base{x.a};
  Reg s0 = sp_[0], s1 = sp_[1];
  int64_t disp = x.imm;
  bool write = vcode::is_store(x.op);
  if (o_.trusted) {
    if (x.flags & vcode::kIndex) {
      to_p(s0, Reg{x.b});
      bin(Op::Add, s0, s0, base);
      bin_imm(Op::Add, s0, s0, wrap_add(disp, o_.trusted_delta));
    } else {
      bin_imm(Op::Add, s0, base, wrap_add(disp, o_.trusted_delta));
    }
    emit(unaligned(x.op), x.type, 0, x.dst, s0.id, 0, 0);
    return;
  }
  if (int64_t(o_.region_len) < size) {
    jmp(l_fault_);
    return;
  }
  bool indexed = x.flags & vcode::kIndex;
  uint32_t back = new_label("access");
  if (!indexed && cache_valid_ && cache_base_ == x.a && cache_write_ == write) {
    ++reused_;
    uint32_t slow = new_label("recheck");
    if (disp != cache_disp_) bin_imm(Op::Add, s0, s0, wrap_sub(disp, cache_disp_));
    br_imm(Op::Bgt, s0, kPage - size, slow);
    mask_offset(s0, sp_[2], kPage - size);
    place(back);
    emit(unaligned(x.op), x.type, vcode::kIndex, x.dst, s1.id, s0.id, 0);
    std::vector<Insn> saved;
    saved.swap(out_.code);
    place(slow);
    full_check(x, base, disp, size, write, back);
    jmp(back);
    for (const Insn& y : out_.code) tail_.push_back(y);
    out_.code.swap(saved);
  } else {
    full_check(x, base, disp, size, write, back);
    place(back);
    emit(unaligned(x.op), x.type, vcode::kIndex, x.dst, s1.id, s0.id, 0);
  }
  cache_valid_ = !indexed && o_.region_len % uint64_t(kPage) == 0 && x.dst != x.a;
  cache_base_ = x.a;
  cache_disp_ = disp;
  cache_write_ = write;
}

// s0 = offset in the page, s1 = the page's host address, for [base (+ index) + disp, +size);
// faults when outside the region or not mapped; a page-crossing access goes through an
// out-of-line check of the next page and continues at `back`.
void Lowerer::full_check(const Insn& x, Reg base, int64_t disp, int64_t size, bool write,
                         uint32_t back) {
  Reg s0 = sp_[0], s1 = sp_[1], s2 = sp_[2];
  if (x.flags & vcode::kIndex) {
    to_p(s0, Reg{x.b});
    bin(Op::Add, s0, s0, base);
    bin_imm(Op::Add, s0, s0, wrap_sub(disp, int64_t(o_.region_va)));
  } else {
    bin_imm(Op::Add, s0, base, wrap_sub(disp, int64_t(o_.region_va)));
  }
  br_imm(Op::Bgt, s0, int64_t(o_.region_len) - size, l_fault_);
  mask_offset(s0, s2, int64_t(o_.region_len) - size);  // also the software TLB's index
  bin_imm(Op::Rsh, s2, s0, runtime::kPageShift);
  bin_imm(Op::Lsh, s2, s2, 3);
  int64_t tlb = write ? o_.tlb_write : o_.tlb_read;
  load_ix(Op::Ld, s1, state_, s2, tlb);
  br_imm(Op::Beq, s1, 0, l_fault_);
  bin_imm(Op::And, s0, s0, kPage - 1);
  uint32_t cross = new_label("cross");
  br_imm(Op::Bgt, s0, kPage - size, cross);
  // Out of line: the access straddles two pages; both must be mapped and host-contiguous.
  std::vector<Insn> saved;
  saved.swap(out_.code);
  place(cross);
  load_ix(Op::Ld, s2, state_, s2, tlb + 8);
  bin_imm(Op::Sub, s2, s2, kPage);
  br(Op::Bne, s2, s1, l_fault_);
  jmp(back);
  for (const Insn& y : out_.code) tail_.push_back(y);
  out_.code.swap(saved);
  // Falls through to the access when it does not cross.
  mask_offset(s0, s2, kPage - size);
  (void)x;
}

}  // namespace exojit::ash::sandbox
