// SPDX-License-Identifier: MIT
// The debug directory and the listing files (files_p.h).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>

#include "exojit/error.h"
#include "files_p.h"

namespace exojit::vcode::detail {

namespace {

void make_directory(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) fail("debug info: cannot create the directory {}: {}", path, ec.message());
}

std::string new_directory() {
  if (const char* dir = std::getenv("JITDUMPDIR"); dir && *dir) {
    make_directory(dir);
    return std::filesystem::absolute(dir).lexically_normal().string();
  }
  const char* home = std::getenv("HOME");
  std::string parent = fmt::format("{}/.debug/jit", home && *home ? home : ".");
  make_directory(parent);
  char date[16];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%Y%m%d", &tm);
  std::string templ = fmt::format("{}/exojit-{}-XXXXXX", parent, date);
  if (!mkdtemp(templ.data()))
    fail("debug info: cannot create a directory in {}: {}", parent, std::strerror(errno));
  static std::string made;  // removed at exit if nothing is left in it (gdb's listings only)
  made = std::filesystem::absolute(templ).lexically_normal().string();
  std::atexit([] { rmdir(made.c_str()); });
  return made;
}

}  // namespace

std::string debug_directory() {
  static std::mutex lock;
  static std::string dir;
  std::lock_guard<std::mutex> g(lock);
  if (dir.empty()) dir = new_directory();
  return dir;
}

std::string write_debug_file(std::string_view prefix, std::string_view suffix,
                             std::string_view text) {
  static std::atomic<uint64_t> next{0};
  std::string path =
      fmt::format("{}/{}-{}-{}{}", debug_directory(), prefix, getpid(), next++, suffix);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("debug info: cannot create {}: {}", path, std::strerror(errno));
  try {
    write_all(fd, text.data(), text.size(), path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return path;
}

void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n) {
    ssize_t done = ::write(fd, p, n);
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) fail("debug info: cannot write {}: {}", path, std::strerror(errno));
    p += done;
    n -= size_t(done);
  }
}

}  // namespace exojit::vcode::detail
