// SPDX-License-Identifier: MIT
// The line table (CompileOptions::line_table, Code::line_table()): a row per IR record at the
// offset where its machine code starts, on the listing line that prints that record; the code
// itself unchanged by asking for it; on x86-64 and AArch64 (cross-JIT).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "exojit/vcode.h"

namespace exojit::vcode {
namespace {

std::vector<std::filesystem::path> example_listings() {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(EXAMPLES))
    if (e.path().extension() == ".vc") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

Module parse_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str());
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

constexpr Target kTargets[] = {Target::X86_64, Target::AArch64};

TEST(LineTable, OnlyWhenAskedFor) {
  Module m = parse_file(std::filesystem::path(EXAMPLES) / "fib.vc");
  EXPECT_EQ(compile(m).line_table(), nullptr);
  EXPECT_NE(compile(m, {.line_table = true}).line_table(), nullptr);
  Code moved = compile(m, {.line_table = true});
  Code other = std::move(moved);
  ASSERT_NE(other.line_table(), nullptr);
  EXPECT_EQ(other.line_table()->functions.size(), m.functions().size());
}

// Every record has its row, in order, at non-decreasing offsets inside the function; the row's
// line is the line that prints the record, and the function's header line its `func` line.
TEST(LineTable, EveryRecordOnItsListingLine) {
  for (Target target : kTargets) {
    for (const auto& path : example_listings()) {
      SCOPED_TRACE(path.filename().string() + " " + std::string(target_name(target)));
      Module m = parse_file(path);
      Code code = compile(m, {.target = target, .line_table = true});
      const LineTable* t = code.line_table();
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->listing, print(m));
      ASSERT_EQ(t->functions.size(), m.functions().size());
      for (size_t i = 0; i < m.functions().size(); ++i) {
        const Function& f = *m.functions()[i];
        const LineTable::Function& lf = t->functions[i];
        EXPECT_EQ(lf.size, code.symbols()[i].size);
        EXPECT_EQ(t->line_text(lf.header_line).substr(0, 6 + f.name.size()), "func @" + f.name);
        ASSERT_EQ(lf.rows.size(), f.code.size());
        uint32_t previous = 0;
        for (size_t r = 0; r < lf.rows.size(); ++r) {
          const LineTable::Row& row = lf.rows[r];
          EXPECT_EQ(row.record, r);
          EXPECT_GE(row.offset, previous);
          EXPECT_LT(row.offset, lf.size);
          previous = row.offset;
          EXPECT_EQ(trimmed(t->line_text(t->line_of(i, row))), print_insn(m, f, f.code[r]));
        }
      }
    }
  }
}

// line_at: the prologue is on the `func` line; every other byte on the line of the last record
// that starts at or before it.
TEST(LineTable, LineAtEveryByte) {
  Module m = parse_file(std::filesystem::path(EXAMPLES) / "fib.vc");
  Code code = compile(m, {.line_table = true});
  const LineTable& t = *code.line_table();
  for (size_t i = 0; i < t.functions.size(); ++i) {
    const LineTable::Function& f = t.functions[i];
    for (uint32_t at = 0; at < f.size; ++at) {
      uint32_t want = f.header_line;
      for (const LineTable::Row& r : f.rows)
        if (r.offset <= at) want = t.line_of(i, r);
      EXPECT_EQ(t.line_at(i, at), want) << "function " << i << " offset " << at;
    }
  }
  EXPECT_EQ(t.line_text(0), "");
  EXPECT_EQ(t.line_text(1000000), "");
}

// Asking for a line table changes nothing in the code (the back ends only note offsets).
TEST(LineTable, SameMachineCode) {
  for (Target target : kTargets) {
    for (const auto& path : example_listings()) {
      SCOPED_TRACE(path.filename().string() + " " + std::string(target_name(target)));
      Module m = parse_file(path);
      Code plain = compile(m, {.target = target});
      Code lined = compile(m, {.target = target, .line_table = true});
      ASSERT_EQ(plain.size(), lined.size());
      // Calls between functions are relative, extern addresses the same: identical bytes.
      EXPECT_EQ(std::vector<uint8_t>(plain.data(), plain.data() + plain.size()),
                std::vector<uint8_t>(lined.data(), lined.data() + lined.size()));
    }
  }
}

#if EXOJIT_WITH_DISASM
// The machine code between a record's offset and the next record's is that record's: a `ret`
// ends in the return instruction, a call holds the call, a label emits nothing, a multiplication
// multiplies.
TEST(LineTable, EachRecordsMachineCode) {
  for (Target target : kTargets) {
    SCOPED_TRACE(std::string(target_name(target)));
    const bool a64 = target == Target::AArch64;
    Module m = parse_file(std::filesystem::path(EXAMPLES) / "fib.vc");
    Code code = compile(m, {.target = target, .line_table = true});
    const LineTable& t = *code.line_table();
    int calls = 0, rets = 0, labels = 0;
    for (size_t i = 0; i < t.functions.size(); ++i) {
      const Function& f = *m.functions()[i];
      const LineTable::Function& lf = t.functions[i];
      const uint8_t* start = code.data() + code.symbols()[i].offset;
      for (size_t r = 0; r < lf.rows.size(); ++r) {
        uint32_t begin = lf.rows[r].offset;
        uint32_t end = r + 1 < lf.rows.size() ? lf.rows[r + 1].offset : lf.size;
        std::vector<DisasmLine> insns = disassemble(start + begin, end - begin, begin, target);
        std::string text;
        for (const DisasmLine& l : insns) text += l.text + "\n";
        SCOPED_TRACE(f.name + ": " + print_insn(m, f, f.code[r]) + "\n" + text);
        switch (f.code[r].op) {
          case Op::Place:
            EXPECT_TRUE(insns.empty());
            ++labels;
            break;
          case Op::Ret:
            ASSERT_FALSE(insns.empty());
            EXPECT_EQ(insns.back().text.substr(0, 3), "ret");
            ++rets;
            break;
          case Op::Call:
            EXPECT_NE(text.find(a64 ? "bl" : "call"), std::string::npos);
            ++calls;
            break;
          default:
            EXPECT_FALSE(insns.empty());
            EXPECT_EQ(text.find("ret"), std::string::npos);
            break;
        }
      }
    }
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(rets, 5);
    EXPECT_EQ(labels, 4);
  }
}
#endif

}  // namespace
}  // namespace exojit::vcode
