// SPDX-License-Identifier: MIT
// Without libFuzzer: runs the escape fuzz target on its seeds (the attack classes of the
// sandbox's hardening issue, written with the encoder of fuzz_escape.h) and on every file of
// the given directories (inputs saved from fuzzing runs).
//
//   fuzz_ash_escape_corpus [DIR...]          run the seeds and the files
//   fuzz_ash_escape_corpus --write-seeds DIR  write the seeds as files (the libFuzzer corpus)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_escape.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern size_t exojit_ash_escape_unbuilt, exojit_ash_escape_refused, exojit_ash_escape_run;

namespace {

using namespace exojit::ash::fuzz;
namespace fs = std::filesystem;

// Pool indexes (fuzz_escape.cpp's order).
enum Pool : uint8_t {
  kApp,
  kAppPageEnd,
  kWritableEnd,
  kReadOnly,
  kHole,
  kRegionEnd,
  kBelow,
  kVictim,
  kMin,
  kMax,
  kZero,
  kAllOnes,
  kQuarter,        // 1 << 62
  kMinusQuarter8,  // 8 - (1 << 62)
  kCanary,
  kPhysical,
};
enum RegIndex : uint8_t { kP0, kP1, kX, kV, kQ, kI, kT32, kT8 };
constexpr uint8_t kRegionFull = 0, kRegionEmpty = 1, kRegionOdd = 2, kBigBudget = 11;

std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds() {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  auto add = [&](std::string name, Encoder& e) { out.emplace_back(std::move(name), e.bytes); };
  std::vector<uint8_t> msg(40, 0x11);

  {  // Class 1: the base moved by -(1 << 62) + 8 before a back edge, then a store.
    Encoder e(kRegionFull, kBigBudget);
    e.op(kSet).b(kP0).pool(kApp);
    e.op(kLoop).b(4).b(1).b(1).b(1);
    e.op(kAddImm).b(kP0).pool(kMinusQuarter8);
    e.op(kStore).b(2).b(0).b(0).small(0);
    e.end_ops().edits(0).message(msg);
    add("issue15_class1_marker_moved", e);
  }
  {  // Class 1, the legal variant: +2^62 four times, back where it started, then a store.
    Encoder e(kRegionFull, kBigBudget);
    e.op(kSet).b(kP0).raw(0x20000000 + 64);
    e.op(kLoop).b(8).b(1).b(1).b(1);
    e.op(kAddImm).b(kP0).pool(kQuarter);
    e.op(kStore).b(2).b(1).b(0).small(0);
    e.end_ops().edits(0).message(msg);
    add("issue15_class1_legal_wrap", e);
  }
  for (uint8_t region : {kRegionEmpty, kRegionOdd}) {  // Class 2: an empty (or odd) region.
    Encoder e(region, kBigBudget);
    e.op(kSet).b(kP0).pool(kApp);
    e.op(kLoop).b(40).b(0).b(0).b(3);
    e.op(kStore).b(2).b(0).b(0).small(0);
    e.op(kLoad).b(1).b(1).b(0).small(1);
    e.op(kAddImm).b(kP0).small(1);
    e.end_ops().edits(0).message(msg);
    add(region == kRegionEmpty ? "issue15_class2_empty_region" : "issue15_class2_odd_region", e);
  }
  {  // Class 2: a trusted handler for an empty region must be refused.
    Encoder e(kRegionEmpty, 4, 2);
    e.end_ops().edits(0).message(msg);
    add("issue15_class2_trusted_empty", e);
  }
  // Class 5: the records edited after finish().
  struct EditCase {
    const char* name;
    EditField field;
    uint8_t index, value;
  };
  const EditCase edits[] = {
      {"issue15_class5_slot_out_of_pool", kEditRegSlot, 12, 9},
      {"issue15_class5_slot_of_scratch", kEditRegSlot, 12, 1},
      {"issue15_class5_label_out_of_range", kEditDst, 9, 250},
      {"issue15_class5_call_arg_index", kEditA, 14, 250},
      {"issue15_class5_call_arg_count", kEditB, 14, 23},
      {"issue15_class5_final_commit_removed", kEditRemove, 255, 0},
      {"issue15_class5_params", kEditParam, 0, 5},
      {"issue15_class5_labels", kEditLabels, 0, 250},
      {"issue15_class5_flags", kEditFlags, 10, 0xff},
      {"issue15_class5_opcode", kEditOp, 10, 49},
      {"issue15_class5_local_align", kEditLocal, 3, 1},
      {"issue15_class5_sig", kEditSig, 0, 3},
  };
  for (const EditCase& c : edits) {
    Encoder e(kRegionFull, kBigBudget);
    e.op(kSet).b(kP0).pool(kApp);
    e.op(kPrim).b(4);  // msg_length into x
    e.op(kStore).b(2).b(0).b(0).small(1);
    e.op(kPrim).b(7);             // reply_begin
    e.op(kPrim).b(8).b(2);        // reply_put(v, 4)
    e.op(kPrim).b(10).b(1).b(1);  // reply_copy(x, x)
    e.op(kPrim).b(13);            // reply_send
    e.op(kLocal).b(1).b(3);
    e.end_ops().edits(1).edit(c.field, c.index, c.value);
    e.message(msg);
    add(c.name, e);
  }
  {  // Class 6: INT64_MIN/INT64_MAX displacements and steps, an empty message's reply copy.
    Encoder e(kRegionFull, kBigBudget);
    e.op(kSet).b(kP0).pool(kApp);
    e.op(kStore).b(2).b(1).b(0).pool(kMin);
    e.op(kLoad).b(2).b(0).b(0).pool(kMax);
    e.op(kAddImm).b(kP0).pool(kMin);
    e.op(kStore).b(0).b(2).b(0).pool(kMax);
    e.op(kLoop).b(3).b(0).b(0).b(2);
    e.op(kStore).b(1).b(1).b(0).small(0);
    e.op(kAddImm).b(kP0).pool(kMax);
    e.op(kPrim).b(7);
    e.op(kPrim).b(10).b(0).b(0).b(0).b(0);  // reply_copy(0, 0)
    e.op(kPrim).b(13);
    e.end_ops().edits(0);  // no message bytes: every message is empty
    add("issue15_class6_extremes", e);
  }
  {  // Several bases, indexed accesses, a division, the canaries and physical memory.
    Encoder e(kRegionFull, kBigBudget);
    e.op(kSet).b(kP0).pool(kCanary);
    e.op(kSet).b(kP1).pool(kPhysical);
    e.op(kSet).b(kI).pool(kAllOnes);
    e.op(kIndexed).b(1).b(2).b(0).small(0);
    e.op(kIndexed).b(1).b(2).b(1).pool(kApp);
    e.op(kDivide).b(0).b(1).b(kX);
    e.op(kSpin).small(-1);
    e.end_ops().edits(0).message(msg);
    add("wild_bases", e);
  }
  // The extended header: limits at their caps, pipe lists, hardening off, boundary sizes.
  // Table indexes (fuzz_escape.cpp): locals 6 = 256, 9 = 2048, 10 = 2049; insns 6 = 4096,
  // 9 = 65536, 10 = 65537; lists 6 = 64, 7 = 65; sizes 9 = 2048, 13 = 65536, 14 = 65537.
  struct LimitCase {
    const char* name;
    uint8_t locals, insns, options, lists, msg_a, msg_b;
  };
  const LimitCase limits[] = {
      {"limits_locals_at_cap", 9, 6, 7 << 3, 0, 1, 2},
      {"limits_locals_past_cap", 10, 6, 0, 0, 1, 2},
      {"limits_insns_at_cap", 6, 9, 0, 1, 9, 13},
      {"limits_insns_past_cap", 6, 10, 0, 1, 9, 13},
      {"pipes_64_lists", 6, 9, 0, 6, 13, 14},
      {"pipes_65_lists", 6, 9, 0, 7, 13, 14},
      {"pipes_unhardened_wild", 6, 6, kOptNoHarden, 2 | (6 << 3), 14, 15},
  };
  for (const LimitCase& c : limits) {
    Encoder e(kRegionFull, kBigBudget, kFlagExtended);
    e.extended(c.locals, c.insns, c.options, c.lists, c.msg_a, c.msg_b);
    e.op(kSet).b(kP0).pool(kApp);
    e.op(kPipe).b(5).b(1).b(0);        // the rest of the message through list 0
    e.op(kPipe).b(2).b(1).b(0).b(18);  // reply_app(p0, 2048, list 0)
    e.op(kPipe).b(3).b(0).b(0);        // pipe_get(ref 0)
    e.op(kPipe).b(0).b(0).b(0).b(26);  // consume(p0, 65536)
    e.op(kLocal).b(1).b(255);
    e.op(kPrim).b(13);  // reply_send
    e.end_ops().edits(0).message({1, 2, 3, 4, 5});
    add(c.name, e);
  }
  for (uint8_t how : {0, 2}) {  // a pipe body's parameters or registers edited after add()
    Encoder e(kRegionFull, kBigBudget, kFlagExtended);
    e.extended(6, 6, 0, 1 | (6 << 3), 0, 0);  // one list: the wild pipe
    e.op(kSet).b(kP0).pool(kApp);
    e.op(kPipe).b(5).b(1).b(0);
    e.end_ops().edits(1).edit(kEditPipeBody, 0, how).b(1);
    e.message({1, 2, 3, 4, 5, 6, 7, 8, 9});
    add(how == 0 ? "pipes_body_params_edited" : "pipes_body_regs_edited", e);
  }
  return out;
}

bool run_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  if (!in.eof() && in.fail()) return false;
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
    fs::create_directories(argv[2]);
    for (const auto& [name, bytes] : seeds()) {
      std::ofstream out(fs::path(argv[2]) / name, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    }
    return 0;
  }
  size_t runs = 0;
  for (const auto& [name, bytes] : seeds()) {
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++runs;
  }
  for (int i = 1; i < argc; ++i) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(argv[i], ec))
      if (entry.is_regular_file()) files.push_back(entry.path());
    if (ec) {
      std::fprintf(stderr, "fuzz_ash_escape_corpus: cannot read %s\n", argv[i]);
      return 2;
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      if (!run_file(f)) {
        std::fprintf(stderr, "fuzz_ash_escape_corpus: cannot read %s\n", f.c_str());
        return 2;
      }
      ++runs;
    }
  }
  // Findings abort(): reaching here means none.
  std::printf(
      "fuzz_ash_escape: %zu inputs (per engine: %zu not programs, %zu refused, %zu run), "
      "0 failures\n",
      runs, exojit_ash_escape_unbuilt, exojit_ash_escape_refused, exojit_ash_escape_run);
  return 0;
}
