// SPDX-License-Identifier: MIT
// perf's jitdump (CompileOptions::jitdump, EXOJIT_JITDUMP=1), read back by a reader of its own.
// A child process (this program run again, see ChildMode below) generates code and exits; the
// test then reads its jit-<pid>.dump record by record: the header; a code-load record per
// function with its address, size and bytes, indices counting up; before each a debug-info
// record whose entries map the function's addresses to the lines of the listing file they name;
// timestamps in order; the close record last. The child also reports that the file was mapped
// executable (perf's marker) and what it compiled, through a file of expectations.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>
#include <thread>
#include <tuple>

#include "example_set.h"
#include "exojit/dpf/engine.h"
#include "exojit/pipes.h"
#include "exojit/vcode.h"

extern char** environ;

namespace exojit::vcode {
namespace {

namespace fs = std::filesystem;

// --- the child: generates code, writes what it expects the dump to hold, exits ----------------

Module two_functions() {
  return parse(R"(func @sum(%p: p temp, %n: u64 temp) -> u64 {
  %acc: u64 temp
  %b: u8 temp
  %w: u64 temp
  set %acc, 0
loop:
  beq %n, 0, done
  ld %b, [%p]
  cvt %w, %b
  add %acc, %acc, %w
  add %p, %p, 1
  sub %n, %n, 1
  jmp loop
done:
  ret %acc
}
func @twice(%p: p var, %n: u64 var) -> u64 {
  %y: u64 var
  call %y, @sum(%p, %n)
  add %y, %y, %y
  ret %y
}
)");
}

// "fn NAME ADDRESS SIZE BYTES" per function; with a line table, "line ADDRESS LINE TEXT" per
// expected debug entry: the prologue on the `func` line, then each offset where a record's code
// starts, on the line of the record whose code it is, then the function's end on the last line.
void expect_code(std::ostream& out, const Code& code, const std::string& prefix) {
  const LineTable* t = code.line_table();
  for (size_t i = 0; i < code.symbols().size(); ++i) {
    const Code::Symbol& s = code.symbols()[i];
    const uint64_t start = reinterpret_cast<uintptr_t>(code.data()) + s.offset;
    out << "fn " << prefix << s.name << " " << start << " " << s.size << " ";
    for (size_t k = 0; k < s.size; ++k) out << fmt::format("{:02x}", code.data()[s.offset + k]);
    out << "\n";
    if (!t) continue;
    std::vector<uint32_t> offsets{0};
    for (const LineTable::Row& r : t->functions[i].rows)
      if (r.offset != offsets.back() && r.offset < s.size) offsets.push_back(r.offset);
    offsets.push_back(uint32_t(s.size));  // the end, on the last line (perf ends there)
    for (uint32_t o : offsets) {
      uint32_t line = t->line_at(i, std::min<uint32_t>(o, uint32_t(s.size) - 1));
      out << "line " << start + o << " " << line << " " << t->line_text(line) << "\n";
    }
  }
}

bool marker_mapped() {  // an executable mapping of this process's jit-<pid>.dump
  std::ifstream maps("/proc/self/maps");
  std::string line, name = fmt::format("/jit-{}.dump", getpid());
  while (std::getline(maps, line))
    if (line.size() > name.size() && line.ends_with(name) && line.find(" r-x") != std::string::npos)
      return true;
  return false;
}

int child_threads(std::ostream& out) {
  // Four threads compile at once; every Code stays alive until the expectations are written.
  std::vector<Code> codes[4];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&codes, t] {
      Module m = two_functions();
      for (int i = 0; i < 25; ++i) codes[t].push_back(compile(m, {.jitdump = true}));
    });
  for (std::thread& t : threads) t.join();
  for (auto& list : codes)
    for (const Code& c : list) expect_code(out, c, "vcode:");
  return 0;
}

// Every layer that generates code goes through compile(), and so through the jitdump, when the
// environment asks for it (EXOJIT_JITDUMP=1): DPF engines, pipes, ASH handlers, the LLVM tier.
int child_layers(std::ostream& out) {
  dpf::Engine engine;
  engine.insert(dpf::parse_filter("(12:16 == 0x800) && (23:8 == 17)"), {.broad = true});
  expect_code(out, engine.code(), "vcode:");
  pipes::PipeList pl;
  pipes::library::add(pl, "cksum");
  pipes::CompiledPipes ilp = pipes::compile(pl, pipes::Direction::Write);
  expect_code(out, ilp.code(), "vcode:");
  ash::examples::Testbed bed(runtime::Mode::Scheduler, 9);
  std::unique_ptr<ash::Handler> h = ash::examples::make_example("remote_increment", bed);
  expect_code(out, h->code(), "vcode:");
#if EXOJIT_WITH_DISASM
  Code llvm = compile(two_functions(), {.tier = Tier::Llvm});
  expect_code(out, llvm, "vcode.llvm:");
#endif
  return 0;
}

// When this program is started as the child (EXOJIT_TEST_CHILD=mode), the test environment's
// set-up, before any test, writes the expectations to $EXOJIT_TEST_EXPECT and exits, so that
// the jitdump is closed.
class ChildMode : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* mode = std::getenv("EXOJIT_TEST_CHILD");
    if (!mode) return;
    int status = 1;
    try {
      std::ofstream out(std::getenv("EXOJIT_TEST_EXPECT"));
      status = std::string_view(mode) == "threads" ? child_threads(out) : child_layers(out);
      out << "marker " << (marker_mapped() ? "yes" : "no") << "\n";
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    }
    std::exit(status);
  }
};
[[maybe_unused]] ::testing::Environment* const child_mode =
    ::testing::AddGlobalTestEnvironment(new ChildMode);

// --- the parent: runs the child, reads its dump --------------------------------------------

struct Child {
  pid_t pid = 0;
  int status = -1;
  fs::path dir;
  std::string expected;
};

Child run_child(const std::string& mode, bool by_environment) {
  Child c;
  c.dir = fs::path(std::getenv("JITDUMPDIR") ? std::getenv("JITDUMPDIR") : "/tmp") /
          fmt::format("jitdump-test-{}-{}", getpid(), mode);
  fs::remove_all(c.dir);
  fs::create_directories(c.dir);
  fs::path expect = c.dir / "expected.txt";
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with("JITDUMPDIR=") &&
        !std::string_view(*e).starts_with("EXOJIT_"))
      env.push_back(*e);
  env.push_back("JITDUMPDIR=" + c.dir.string());
  env.push_back("EXOJIT_TEST_CHILD=" + mode);
  env.push_back("EXOJIT_TEST_EXPECT=" + expect.string());
  if (by_environment) env.push_back("EXOJIT_JITDUMP=1");
  std::vector<char*> envp;
  for (std::string& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string self = fs::read_symlink("/proc/self/exe");
  char* argv[] = {self.data(), nullptr};
  posix_spawn_file_actions_t quiet;  // the child's own gtest banner is noise
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
  int spawned = posix_spawn(&c.pid, self.c_str(), &quiet, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&quiet);
  if (spawned != 0) return c;
  waitpid(c.pid, &c.status, 0);
  std::ifstream in(expect);
  std::stringstream text;
  text << in.rdbuf();
  c.expected = text.str();
  return c;
}

// The jitdump reader.
struct Record {
  uint32_t id;
  uint64_t timestamp;
  std::string_view body;  // after the 16-byte record header
};
struct Load {
  uint32_t pid, tid;
  uint64_t vma, address, size, index;
  std::string name;
  std::string_view bytes;
};
struct Entry {
  uint64_t address;
  uint32_t line, discriminator;
  std::string file;
};
struct Dump {
  uint32_t magic = 0, version = 0, header_size = 0, machine = 0, pid = 0;
  uint64_t timestamp = 0, flags = 0;
  std::vector<Record> records;
};

template <typename T>
T get(std::string_view& s) {
  if (s.size() < sizeof(T)) throw std::runtime_error("jitdump: truncated");
  T v;
  std::memcpy(&v, s.data(), sizeof v);
  s.remove_prefix(sizeof v);
  return v;
}
std::string get_string(std::string_view& s) {
  size_t nul = s.find('\0');
  if (nul == std::string_view::npos) throw std::runtime_error("jitdump: unterminated string");
  std::string out(s.substr(0, nul));
  s.remove_prefix(nul + 1);
  return out;
}

Dump read_dump(std::string_view s) {
  Dump d;
  d.magic = get<uint32_t>(s);
  d.version = get<uint32_t>(s);
  d.header_size = get<uint32_t>(s);
  d.machine = get<uint32_t>(s);
  get<uint32_t>(s);  // pad1
  d.pid = get<uint32_t>(s);
  d.timestamp = get<uint64_t>(s);
  d.flags = get<uint64_t>(s);
  while (!s.empty()) {
    Record r;
    r.id = get<uint32_t>(s);
    uint32_t size = get<uint32_t>(s);
    r.timestamp = get<uint64_t>(s);
    if (size < 16 || size - 16 > s.size()) throw std::runtime_error("jitdump: bad record size");
    r.body = s.substr(0, size - 16);
    s.remove_prefix(size - 16);
    d.records.push_back(r);
  }
  return d;
}

Load read_load(std::string_view b) {
  Load l;
  l.pid = get<uint32_t>(b);
  l.tid = get<uint32_t>(b);
  l.vma = get<uint64_t>(b);
  l.address = get<uint64_t>(b);
  l.size = get<uint64_t>(b);
  l.index = get<uint64_t>(b);
  l.name = get_string(b);
  l.bytes = b;
  return l;
}

std::vector<Entry> read_debug_info(std::string_view b, uint64_t* address) {
  *address = get<uint64_t>(b);
  uint64_t n = get<uint64_t>(b);
  std::vector<Entry> out;
  for (uint64_t i = 0; i < n; ++i) {
    Entry e;
    e.address = get<uint64_t>(b);
    e.line = get<uint32_t>(b);
    e.discriminator = get<uint32_t>(b);
    e.file = get_string(b);
    out.push_back(e);
  }
  if (b.size() >= 8) throw std::runtime_error("jitdump: debug info longer than its entries");
  return out;
}

std::string file_line(const std::string& path, uint32_t line) {
  std::ifstream in(path);
  std::string text;
  for (uint32_t l = 0; l < line && std::getline(in, text); ++l) {
  }
  return text;
}

struct Expected {
  struct Fn {
    std::string name, bytes;
    uint64_t address, size;
    std::vector<std::tuple<uint64_t, uint32_t, std::string>> lines;
  };
  std::vector<Fn> functions;
  bool marker = false;
};

Expected parse_expected(const std::string& text) {
  Expected e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (kind == "fn") {
      Expected::Fn f;
      words >> f.name >> f.address >> f.size >> f.bytes;
      e.functions.push_back(f);
    } else if (kind == "line") {
      uint64_t address;
      uint32_t number;
      words >> address >> number;
      std::string rest;
      std::getline(words, rest);
      e.functions.back().lines.emplace_back(address, number, rest.empty() ? "" : rest.substr(1));
    } else if (kind == "marker") {
      std::string yes;
      words >> yes;
      e.marker = yes == "yes";
    }
  }
  return e;
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += fmt::format("{:02x}", uint8_t(c));
  return out;
}

// Checks the whole dump of `c`, and that it holds what the child expected.
void check_dump(const Child& c, bool exact_count) {
  ASSERT_TRUE(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) << "child status " << c.status;
  Expected want = parse_expected(c.expected);
  ASSERT_FALSE(want.functions.empty());
  EXPECT_TRUE(want.marker) << "the dump was not mapped executable (perf's marker)";
  fs::path path = c.dir / fmt::format("jit-{}.dump", c.pid);
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path;
  std::stringstream bytes;
  bytes << in.rdbuf();
  std::string data = bytes.str();
  Dump d = read_dump(data);
  EXPECT_EQ(d.magic, 0x4A695444u);
  EXPECT_EQ(d.version, 1u);
  EXPECT_EQ(d.header_size, 40u);
  EXPECT_EQ(d.machine, kHostTarget == Target::AArch64 ? 183u : 62u);
  EXPECT_EQ(d.pid, uint32_t(c.pid));
  EXPECT_EQ(d.flags, 0u);
  ASSERT_FALSE(d.records.empty());
  EXPECT_EQ(d.records.back().id, 3u) << "no JIT_CODE_CLOSE at the end";
  EXPECT_TRUE(d.records.back().body.empty());

  std::map<uint64_t, Load> loads;
  std::map<uint64_t, std::vector<Entry>> infos;
  uint64_t last_time = d.timestamp, next_index = 0;
  const std::vector<Entry>* pending = nullptr;  // the debug info before a load
  uint64_t pending_address = 0;
  std::vector<Entry> pending_entries;
  for (size_t i = 0; i < d.records.size(); ++i) {
    const Record& r = d.records[i];
    EXPECT_GE(r.timestamp, last_time) << "record " << i;
    last_time = r.timestamp;
    if (r.id == 2) {  // JIT_CODE_DEBUG_INFO
      pending_entries = read_debug_info(r.body, &pending_address);
      pending = &pending_entries;
    } else if (r.id == 0) {  // JIT_CODE_LOAD
      Load l = read_load(r.body);
      EXPECT_EQ(l.pid, uint32_t(c.pid));
      EXPECT_NE(l.tid, 0u);
      EXPECT_EQ(l.vma, l.address);
      EXPECT_EQ(l.index, next_index++);
      EXPECT_EQ(l.bytes.size(), l.size);
      // Freed code's addresses are reused: the last load at an address is the live one.
      infos.erase(l.address);
      if (pending) {
        EXPECT_EQ(pending_address, l.address) << "debug info for another function";
        infos[l.address] = *pending;
        pending = nullptr;
      }
      loads[l.address] = l;
    } else {
      EXPECT_EQ(r.id, 3u) << "unknown record " << r.id;
      EXPECT_EQ(i, d.records.size() - 1) << "records after JIT_CODE_CLOSE";
    }
  }
  // Every function the child kept; with exact_count, nothing else (no code was freed).
  if (exact_count) {
    EXPECT_EQ(loads.size(), want.functions.size());
  }
  for (const Expected::Fn& f : want.functions) {
    SCOPED_TRACE(f.name);
    ASSERT_TRUE(loads.count(f.address));
    const Load& l = loads[f.address];
    EXPECT_EQ(l.name, f.name);
    EXPECT_EQ(l.size, f.size);
    EXPECT_EQ(hex(l.bytes), f.bytes);
    if (f.lines.empty()) {
      EXPECT_EQ(infos.count(f.address), f.lines.empty() ? 0u : 1u);
      continue;
    }
    ASSERT_TRUE(infos.count(f.address)) << "no debug info";
    const std::vector<Entry>& entries = infos[f.address];
    ASSERT_EQ(entries.size(), f.lines.size());
    for (size_t k = 0; k < entries.size(); ++k) {
      const auto& [address, line, text] = f.lines[k];
      EXPECT_EQ(entries[k].address, address);
      EXPECT_EQ(entries[k].line, line);
      EXPECT_EQ(entries[k].discriminator, 0u);
      EXPECT_TRUE(entries[k].file.starts_with(c.dir.string())) << entries[k].file;
      // The listing file holds, on that line, what the line table says it does.
      EXPECT_EQ(file_line(entries[k].file, line), text);
      EXPECT_GE(entries[k].address, l.address);
      EXPECT_LE(entries[k].address, l.address + l.size);
    }
  }
}

TEST(Jitdump, EveryRecordFromFourThreads) {
  Child c = run_child("threads", false);
  check_dump(c, true);
  Expected want = parse_expected(c.expected);
  EXPECT_EQ(want.functions.size(), 4u * 25u * 2u);
}

TEST(Jitdump, EveryLayerByTheEnvironment) {
  Child c = run_child("layers", true);
  check_dump(c, false);  // the handler's pipes, the testbed's filters and predicates too
  Expected want = parse_expected(c.expected);
  bool llvm = false;
  for (const Expected::Fn& f : want.functions) llvm |= f.name.starts_with("vcode.llvm:");
  EXPECT_EQ(llvm, bool(EXOJIT_WITH_DISASM));
}

}  // namespace
}  // namespace exojit::vcode
