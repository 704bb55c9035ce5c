// SPDX-License-Identifier: MIT
// The jitdump writer (jitdump_p.h). Record layouts: jitdump-specification.txt, sections III
// (header) and IV (JIT_CODE_LOAD = 0, JIT_CODE_DEBUG_INFO = 2, JIT_CODE_CLOSE = 3). Timestamps
// are CLOCK_MONOTONIC, which `perf record -k mono` samples with.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "bytes_p.h"
#include "exojit/error.h"
#include "files_p.h"
#include "jitdump_p.h"

namespace exojit::vcode::detail {

namespace {

constexpr uint32_t kMagic = 0x4A695444;  // "JiTD"
constexpr uint32_t kVersion = 1;
enum : uint32_t { kCodeLoad = 0, kDebugInfo = 2, kClose = 3 };

#if defined(__aarch64__)
constexpr uint32_t kElfMachine = 183;  // EM_AARCH64
#else
constexpr uint32_t kElfMachine = 62;  // EM_X86_64
#endif

uint64_t timestamp() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// The record header: id, total size (patched by end_record), timestamp.
size_t begin_record(Bytes& b, uint32_t id) {
  size_t start = b.size();
  b.u32(id);
  b.u32(0);
  b.u64(timestamp());
  return start;
}
void end_record(Bytes& b, size_t start) {
  b.patch(start + 4, b.size() - start, 4);
}

class Writer {
 public:
  void write(const std::string& file, const std::vector<JitdumpFunction>& functions) {
    std::lock_guard<std::mutex> g(lock_);
    if (closed_ && pid_ == getpid()) return;  // code compiled during exit, after the close
    if (fd_ < 0 || pid_ != getpid()) open();  // first use, or a child after fork()
    Bytes b;
    const uint32_t tid = uint32_t(gettid());
    for (const JitdumpFunction& f : functions) {
      if (!f.lines.empty()) {  // must come before the load record of the same code
        size_t r = begin_record(b, kDebugInfo);
        b.u64(f.address);
        b.u64(f.lines.size());
        for (const JitdumpFunction::Line& l : f.lines) {
          b.u64(l.address);
          b.u32(l.line);
          b.u32(0);  // discriminator
          b.str(file);
        }
        b.align(8);
        end_record(b, r);
      }
      size_t r = begin_record(b, kCodeLoad);
      b.u32(uint32_t(pid_));
      b.u32(tid);
      b.u64(f.address);  // vma
      b.u64(f.address);  // code_addr
      b.u64(f.size);
      b.u64(next_index_++);
      b.str(f.name);
      b.bytes(f.bytes, f.size);
      end_record(b, r);
    }
    write_all(fd_, b.data().data(), b.size(), path_);
  }

  std::string path() {
    std::lock_guard<std::mutex> g(lock_);
    return pid_ == getpid() ? path_ : std::string();
  }

 private:
  void open() {
    if (fd_ >= 0) {  // the parent's file, inherited through fork(): keep out of it
      ::close(fd_);
      if (marker_) munmap(marker_, marker_size_);
      fd_ = -1;
      marker_ = nullptr;
    }
    pid_ = getpid();
    closed_ = false;
    path_ = fmt::format("{}/jit-{}.dump", debug_directory(), pid_);
    int fd = ::open(path_.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0666);
    if (fd < 0) fail("jitdump: cannot create {}: {}", path_, std::strerror(errno));
    Bytes h;
    h.u32(kMagic);
    h.u32(kVersion);
    h.u32(40);  // header size
    h.u32(kElfMachine);
    h.u32(0);  // pad1
    h.u32(uint32_t(pid_));
    h.u64(timestamp());
    h.u64(0);  // flags
    try {
      write_all(fd, h.data().data(), h.size(), path_);
    } catch (...) {
      ::close(fd);
      throw;
    }
    // perf finds the file through this mapping's mmap event; it must be executable.
    marker_size_ = size_t(sysconf(_SC_PAGESIZE));
    void* marker = mmap(nullptr, marker_size_, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    if (marker == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail("jitdump: cannot map {} (perf's marker): {}", path_, std::strerror(err));
    }
    marker_ = marker;
    fd_ = fd;
    next_index_ = 0;
    static bool closes_at_exit = [] { return std::atexit([] { writer().close(); }) == 0; }();
    (void)closes_at_exit;
  }

  void close() {
    std::lock_guard<std::mutex> g(lock_);
    if (fd_ < 0 || pid_ != getpid()) return;  // nothing written by this process
    Bytes b;
    end_record(b, begin_record(b, kClose));
    try {
      write_all(fd_, b.data().data(), b.size(), path_);
    } catch (const Error&) {  // at exit there is nobody to tell
    }
    ::close(fd_);
    fd_ = -1;
    closed_ = true;
  }

 public:
  static Writer& writer() {
    static Writer* w = new Writer;  // never destroyed: the atexit handler uses it
    return *w;
  }

 private:
  std::mutex lock_;
  int fd_ = -1;
  pid_t pid_ = 0;
  std::string path_;
  void* marker_ = nullptr;
  size_t marker_size_ = 0;
  uint64_t next_index_ = 0;
  bool closed_ = false;
};

}  // namespace

void jitdump_write(const std::string& file, const std::vector<JitdumpFunction>& functions) {
  Writer::writer().write(file, functions);
}

std::string jitdump_path() {
  return Writer::writer().path();
}

}  // namespace exojit::vcode::detail
