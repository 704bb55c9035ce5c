// SPDX-License-Identifier: MIT
// The GDB JIT interface (CompileOptions::debug_info), checked through the very structures gdb
// reads: __jit_debug_descriptor's list holds one ELF object per live Code, and none once it is
// freed; the object's .text, symbols and DWARF describe the code (llvm-dwarfdump verifies the
// DWARF and reads its line table back); registration from many threads keeps the list whole.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "exojit/vcode.h"

// gdb's protocol (the GDB manual, "JIT Compilation Interface").
extern "C" {
struct jit_code_entry {
  jit_code_entry* next_entry;
  jit_code_entry* prev_entry;
  const char* symfile_addr;
  uint64_t symfile_size;
};
struct jit_descriptor {
  uint32_t version;
  uint32_t action_flag;
  jit_code_entry* relevant_entry;
  jit_code_entry* first_entry;
};
extern jit_descriptor __jit_debug_descriptor;
}

namespace exojit::vcode {
namespace {

// The registered objects, checking the list's links both ways.
std::vector<const jit_code_entry*> registered() {
  std::vector<const jit_code_entry*> out;
  const jit_code_entry* prev = nullptr;
  for (const jit_code_entry* e = __jit_debug_descriptor.first_entry; e; e = e->next_entry) {
    EXPECT_EQ(e->prev_entry, prev);
    out.push_back(e);
    prev = e;
  }
  return out;
}

// A minimal reader of the ELF64 object: its sections by name, and its function symbols.
struct Elf {
  struct Section {
    uint32_t type;
    uint64_t flags, addr, size;
    std::string_view data;
  };
  std::map<std::string, Section> sections;
  std::map<std::string, std::pair<uint64_t, uint64_t>> symbols;  // name -> (value, size)
  uint16_t type = 0, machine = 0;

  explicit Elf(std::string_view bytes) {
    auto u16 = [&](size_t at) {
      return uint16_t(uint8_t(bytes[at]) | uint8_t(bytes[at + 1]) << 8);
    };
    auto u32 = [&](size_t at) { return uint32_t(u16(at) | uint32_t(u16(at + 2)) << 16); };
    auto u64 = [&](size_t at) { return uint64_t(u32(at)) | uint64_t(u32(at + 4)) << 32; };
    if (bytes.substr(0, 4) !=
            "\x7f"
            "ELF" ||
        bytes[4] != 2 || bytes[5] != 1)
      throw std::runtime_error("not a little-endian ELF64 object");
    type = u16(16);
    machine = u16(18);
    uint64_t shoff = u64(40);
    uint16_t shnum = u16(60), shstrndx = u16(62);
    auto header = [&](size_t i) { return shoff + 64 * i; };
    auto string_at = [&](size_t table, uint32_t offset) {
      return std::string(bytes.data() + u64(header(table) + 24) + offset);
    };
    std::vector<Section> by_index;
    for (size_t i = 0; i < shnum; ++i) {
      size_t h = header(i);
      Section s{u32(h + 4), u64(h + 8), u64(h + 16), u64(h + 32), {}};
      if (s.type != 8) s.data = bytes.substr(u64(h + 24), s.size);  // not NOBITS
      by_index.push_back(s);
      sections[string_at(shstrndx, u32(h))] = s;
    }
    for (size_t i = 0; i < shnum; ++i) {
      if (by_index[i].type != 2) continue;  // SHT_SYMTAB
      uint32_t strtab = u32(header(i) + 40);
      for (size_t at = 24; at < by_index[i].size; at += 24) {  // [0] is the null symbol
        size_t sym = u64(header(i) + 24) + at;
        symbols[string_at(strtab, u32(sym))] = {u64(sym + 8), u64(sym + 16)};
      }
    }
  }
};

Module two_functions() {
  return parse(R"(func @twice(%x: u64 var) -> u64 {
  %y: u64 var
  call %y, @plus_one(%x)
  add %y, %y, %y
  ret %y
}
func @plus_one(%x: u64 temp) -> u64 {
  add %x, %x, 1
  ret %x
}
)");
}

TEST(GdbJit, OneObjectPerCodeWhileItLives) {
  Module m = two_functions();
  const size_t before = registered().size();
  {
    Code code = compile(m, {.debug_info = true});
    std::vector<const jit_code_entry*> now = registered();
    ASSERT_EQ(now.size(), before + 1);
    EXPECT_EQ(__jit_debug_descriptor.version, 1u);
    EXPECT_EQ(__jit_debug_descriptor.action_flag, 1u);  // JIT_REGISTER_FN
    EXPECT_EQ(__jit_debug_descriptor.relevant_entry, now.front());
    Elf elf(std::string_view(now.front()->symfile_addr, now.front()->symfile_size));
    EXPECT_EQ(elf.type, 1);                                             // ET_REL
    EXPECT_EQ(elf.machine, kHostTarget == Target::AArch64 ? 183 : 62);  // EM_AARCH64, EM_X86_64
    ASSERT_TRUE(elf.sections.count(".text"));
    EXPECT_EQ(elf.sections[".text"].addr, reinterpret_cast<uintptr_t>(code.data()));
    EXPECT_EQ(elf.sections[".text"].flags, 0x6u);  // ALLOC | EXECINSTR
    for (const char* s : {".debug_info", ".debug_abbrev", ".debug_line", ".debug_frame"})
      EXPECT_FALSE(elf.sections[s].data.empty()) << s;
    ASSERT_EQ(elf.symbols.size(), 2u);
    for (const Code::Symbol& s : code.symbols()) {
      ASSERT_TRUE(elf.symbols.count(s.name)) << s.name;
      EXPECT_EQ(elf.symbols[s.name].first, s.offset);
      EXPECT_EQ(elf.symbols[s.name].second, s.size);
    }
    auto twice = code.as<uint64_t(uint64_t)>("twice");
    EXPECT_EQ(twice(20), 42u);
    Code moved = std::move(code);  // the registration moves with the code
    EXPECT_EQ(registered().size(), before + 1);
  }
  EXPECT_EQ(registered().size(), before);
  EXPECT_EQ(__jit_debug_descriptor.action_flag, 2u);  // JIT_UNREGISTER_FN
}

TEST(GdbJit, NothingUnlessAsked) {
  Module m = two_functions();
  const size_t before = registered().size();
  Code plain = compile(m);
  // The other machine's code (cannot run here): never registered.
  constexpr Target kOther = kHostTarget == Target::AArch64 ? Target::X86_64 : Target::AArch64;
  Code cross = compile(m, {.target = kOther, .debug_info = true});
  EXPECT_EQ(registered().size(), before);
  EXPECT_NE(cross.line_table(), nullptr);
}

// The object written to a file, as llvm-dwarfdump reads it: valid DWARF, and a line table that
// maps each function's records to their listing lines.
TEST(GdbJit, DwarfReadsBack) {
  if (!std::filesystem::exists(LLVM_DWARFDUMP)) GTEST_SKIP() << "no llvm-dwarfdump";
  Module m = two_functions();
  Code code = compile(m, {.debug_info = true});
  const jit_code_entry* e = registered().front();
  std::filesystem::path file = std::filesystem::temp_directory_path() /
                               ("exojit-gdb-object-" + std::to_string(getpid()) + ".o");
  std::ofstream(file, std::ios::binary).write(e->symfile_addr, std::streamsize(e->symfile_size));
  auto run = [&](const std::string& options) {
    std::string command = std::string(LLVM_DWARFDUMP) + " " + options + " " + file.string();
    FILE* p = popen(command.c_str(), "r");
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    EXPECT_EQ(WEXITSTATUS(pclose(p)), 0) << command << "\n" << out;
    return out;
  };
  EXPECT_NE(run("--verify").find("No errors."), std::string::npos);

  // Rows "0x<address> <line> <column> <file> ..." of --debug-line, against the line table.
  std::string lines = run("--debug-line");
  const LineTable& t = *code.line_table();
  std::map<uint64_t, uint32_t> rows;
  std::regex row("\\n0x([0-9a-f]+) +([0-9]+) +[0-9]+ +1 ");
  for (auto it = std::sregex_iterator(lines.begin(), lines.end(), row);
       it != std::sregex_iterator(); ++it)
    rows[std::stoull((*it)[1], nullptr, 16)] = uint32_t(std::stoul((*it)[2]));
  ASSERT_FALSE(rows.empty()) << lines;
  const uint64_t base = reinterpret_cast<uintptr_t>(code.data());
  for (size_t i = 0; i < t.functions.size(); ++i) {
    const uint64_t start = base + code.symbols()[i].offset;
    ASSERT_TRUE(rows.count(start));
    EXPECT_EQ(rows[start], t.line_at(i, 0));
    for (const LineTable::Row& r : t.functions[i].rows)
      EXPECT_EQ(rows.count(start + r.offset) ? rows[start + r.offset] : 0, t.line_at(i, r.offset))
          << "offset " << r.offset;
  }
  size_t sequences = 0;
  for (size_t at = 0; (at = lines.find("end_sequence", at)) != std::string::npos; ++at) ++sequences;
  EXPECT_EQ(sequences, t.functions.size());  // one per function

  // One FDE per function, covering it.
  std::string frames = run("--debug-frame");
  for (const Code::Symbol& s : code.symbols())
    EXPECT_NE(
        frames.find(fmt::format("pc={:08x}...{:08x}", base + s.offset, base + s.offset + s.size)),
        std::string::npos)
        << frames;
  std::filesystem::remove(file);
}

// A frame of 1 MiB is probed in a loop that moves rsp/sp a page at a time (vcode/src/
// stack_probe_p.h): there the frame is found from the loop's end register (r11 / x17), then from
// the stack pointer again, so that a debugger unwinds from inside the loop (where the guard page
// faults). llvm-dwarfdump reads the call frame information back, row by row.
TEST(GdbJit, ProbeLoopFramesUnwind) {
  if (!std::filesystem::exists(LLVM_DWARFDUMP)) GTEST_SKIP() << "no llvm-dwarfdump";
  Module m;
  Builder b(m, "big", Type::U64, {Type::U64});
  Local l = b.local(1u << 20, 8);
  b.st(b.arg(0), l, 0);
  b.ret(b.arg(0));
  b.finish();
  Code code = compile(m, {.debug_info = true});
  EXPECT_EQ(code.as<uint64_t(uint64_t)>("big")(7), 7u);
  const jit_code_entry* e = registered().back();
  std::filesystem::path file = std::filesystem::temp_directory_path() /
                               ("exojit-gdb-probe-" + std::to_string(getpid()) + ".o");
  std::ofstream(file, std::ios::binary).write(e->symfile_addr, std::streamsize(e->symfile_size));
  std::string command = std::string(LLVM_DWARFDUMP) + " --debug-frame " + file.string();
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(WEXITSTATUS(pclose(p)), 0) << command << "\n" << out;
  std::filesystem::remove(file);
  // Rows "0x<address>: CFA=<reg>+<offset>: ...": from the loop's register, then from the stack
  // pointer at the same offset (the loop's end is where sp stops), no unknown rule in between.
  std::smatch loop;
  ASSERT_TRUE(std::regex_search(out, loop, std::regex(": CFA=(R11|X17|W17)\\+([0-9]+):"))) << out;
  const std::string after = loop.suffix();
  std::smatch next;
  ASSERT_TRUE(std::regex_search(after, next, std::regex(": CFA=([A-Z0-9]+)\\+([0-9]+):"))) << out;
  EXPECT_TRUE(next[1] == "RSP" || next[1] == "SP" || next[1] == "WSP") << out;
  EXPECT_EQ(next[2], loop[2]) << out;
  EXPECT_EQ(out.find("undefined"), std::string::npos) << out;
}

// Threads compile and free code with debug info at once: the list stays whole and ends empty.
TEST(GdbJit, ManyThreads) {
  const size_t before = registered().size();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      Module m = two_functions();
      std::vector<Code> live;
      for (int i = 0; i < 50; ++i) {
        live.push_back(compile(m, {.debug_info = true}));
        if (i % 3 == 2) live.erase(live.begin());
        EXPECT_EQ(live.back().as<uint64_t(uint64_t)>("twice")(1), 4u);
      }
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(registered().size(), before);
}

#if EXOJIT_WITH_DISASM
// The LLVM tier registers the objects ORC linked: its functions by their JIT names.
TEST(GdbJit, LlvmTier) {
  Module m = two_functions();
  const size_t before = registered().size();
  {
    Code code = compile(m, {.debug_info = true, .tier = Tier::Llvm});
    std::vector<const jit_code_entry*> now = registered();
    ASSERT_GT(now.size(), before);
    Elf elf(std::string_view(now.front()->symfile_addr, now.front()->symfile_size));
    bool found = false;
    for (const auto& [name, where] : elf.symbols) found |= name.ends_with(".twice");
    EXPECT_TRUE(found);
    EXPECT_EQ(code.as<uint64_t(uint64_t)>("twice")(20), 42u);
  }
  EXPECT_EQ(registered().size(), before);
}
#endif

}  // namespace
}  // namespace exojit::vcode
