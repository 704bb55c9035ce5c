// SPDX-License-Identifier: MIT
// Attaching debug information to compiled code (code_debug_p.h).
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "code_debug_p.h"
#include "dwarf_p.h"
#include "elf_p.h"
#include "exojit/error.h"
#include "files_p.h"
#include "jitdump_p.h"

namespace exojit::vcode::detail {

namespace {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

// The DWARF rows of one function: the prologue on the `func` line, then each record's line;
// where several records start at one offset, the last (the one whose code it is).
std::vector<DwarfFunction::Line> code_lines(const LineTable& t, size_t i) {
  const LineTable::Function& f = t.functions[i];
  std::vector<DwarfFunction::Line> out{{0, f.header_line}};
  for (const LineTable::Row& r : f.rows) {
    if (r.offset >= f.size) break;  // records after the last instruction (none emit code)
    if (out.back().offset == r.offset) out.pop_back();
    out.push_back({r.offset, t.line_of(i, r)});
  }
  return out;
}

}  // namespace

CodeDebug::OwnedFile::~OwnedFile() {
  if (!path.empty()) unlink(path.c_str());
}

std::shared_ptr<void> map_private_code(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    fail("compile: cannot map {} bytes for code: {}", size, std::strerror(errno));
  return std::shared_ptr<void>(p, [size](void* q) { munmap(q, size); });
}

void seal_private_code(void* base, size_t size) {
  if (mprotect(base, size, PROT_READ | PROT_EXEC) != 0)
    fail("compile: cannot make {} bytes of code executable: {}", size, std::strerror(errno));
}

DebugRequest debug_request(const CompileOptions& options) {
  static const bool gdb_env = env_flag("EXOJIT_GDB");
  static const bool jitdump_env = env_flag("EXOJIT_JITDUMP");
  DebugRequest r;
  r.gdb = options.debug_info || gdb_env;
  r.jitdump = options.jitdump || jitdump_env;
  r.lines = options.line_table || r.gdb || r.jitdump;
  return r;
}

std::unique_ptr<CodeDebug> describe_code(const DebugRequest& request, const Module& m,
                                         Target target, const uint8_t* base,
                                         const std::vector<Code::Symbol>& symbols,
                                         const CodeNotes& notes) {
  auto d = std::make_unique<CodeDebug>();
  d->lines = make_line_table(m, notes, symbols);
  if (target != kHostTarget || !(request.gdb || request.jitdump)) return d;
  const LineTable& t = *d->lines;
  // gdb's `list` and perf's annotate read the listing from a file.
  std::string file = write_debug_file("vcode", ".vc", t.listing);
  if (!request.jitdump) d->listing.path = file;
  const uint64_t address = reinterpret_cast<uintptr_t>(base);
  if (request.gdb) {
    std::vector<DwarfFunction> functions;
    ElfObject object;
    object.target = target;
    object.text_address = address;
    for (size_t i = 0; i < symbols.size(); ++i) {
      const Code::Symbol& s = symbols[i];
      const uint32_t begin = notes.functions[i].begin;
      DwarfFunction f{s.name,           address + s.offset,      s.size, t.functions[i].header_line,
                      code_lines(t, i), notes.functions[i].frame};
      for (CodeNotes::Frame& e : f.frame) e.offset -= begin;
      functions.push_back(std::move(f));
      object.functions.push_back(ElfSymbol{s.name, s.offset, s.size});
      object.text_size = std::max<uint64_t>(object.text_size, s.offset + s.size);
    }
    DwarfSections dwarf = make_dwarf(target, file, address, address + object.text_size, functions);
    object.sections = {{".debug_abbrev", std::move(dwarf.abbrev)},
                       {".debug_info", std::move(dwarf.info)},
                       {".debug_line", std::move(dwarf.line)},
                       {".debug_frame", std::move(dwarf.frame)}};
    d->gdb.push_back(std::make_unique<GdbRegistration>(write_elf(object)));
  }
  if (request.jitdump) {
    std::vector<JitdumpFunction> functions;
    for (size_t i = 0; i < symbols.size(); ++i) {
      const Code::Symbol& s = symbols[i];
      JitdumpFunction f{"vcode:" + s.name, address + s.offset, s.size, base + s.offset, {}};
      for (const DwarfFunction::Line& l : code_lines(t, i))
        f.lines.push_back({f.address + l.offset, l.line});
      // perf ends its line program at the last entry: one more at the end keeps the last
      // record's code on its line.
      f.lines.push_back({f.address + s.size, f.lines.back().line});
      functions.push_back(std::move(f));
    }
    jitdump_write(file, functions);
  }
  return d;
}

std::unique_ptr<CodeDebug> describe_llvm_code(const DebugRequest& request, const uint8_t* base,
                                              const std::vector<Code::Symbol>& symbols,
                                              std::vector<std::vector<uint8_t>> objects) {
  auto d = std::make_unique<CodeDebug>();
  for (std::vector<uint8_t>& o : objects)
    d->gdb.push_back(std::make_unique<GdbRegistration>(std::move(o)));
  if (request.jitdump) {
    std::vector<JitdumpFunction> functions;
    for (const Code::Symbol& s : symbols)
      functions.push_back(JitdumpFunction{"vcode.llvm:" + s.name,
                                          reinterpret_cast<uintptr_t>(base) + s.offset,
                                          s.size,
                                          base + s.offset,
                                          {}});
    jitdump_write("", functions);
  }
  return d;
}

}  // namespace exojit::vcode::detail
