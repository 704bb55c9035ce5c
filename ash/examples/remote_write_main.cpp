// SPDX-License-Identifier: MIT
// Example: the remote write of [ASH96], Figure 3. A frame carries a destination address, a
// length and data; the handler copies the data straight to its place in the application's
// memory (no intermediate buffer), or aborts to the ring when the frame is short.
#include <cstdio>
#include <cstring>

#include "handlers.h"
#include "testbed.h"

using namespace exojit::ash;
using namespace exojit::ash::examples;

int main() {
  Testbed t(exojit::runtime::Mode::Threads, kIncrementPort);
  HandlerBuilder h("remote_write");
  remote_write(h);
  Handler handler(h, t.server(), t.options());
  exojit::runtime::HandlerContext ctx(t.net.kernel_b, t.server(), t.net.nic_b, false);
  const char text[] = "written by an application-specific safe handler";
  uint64_t dst = Testbed::kApp + 0x1234;
  auto f = remote_write_frame(t.net.nic_b.mac(), dst, reinterpret_cast<const uint8_t*>(text),
                              sizeof text);
  handler.handle(ctx, exojit::runtime::Message{f.data(), uint32_t(f.size()), 1});
  char back[sizeof text] = {};
  t.server().user_copy_in(back, dst, sizeof back);
  std::printf("remote write of %zu bytes to 0x%llx: %s\n  memory now holds: \"%s\"\n", sizeof text,
              static_cast<unsigned long long>(dst),
              handler.last_outcome() == Outcome::Committed ? "committed" : "aborted", back);
  // A write outside the handler's region aborts; the application's memory is untouched.
  auto bad = remote_write_frame(t.net.nic_b.mac(), 0x1000, reinterpret_cast<const uint8_t*>(text),
                                sizeof text);
  handler.handle(ctx, exojit::runtime::Message{bad.data(), uint32_t(bad.size()), 1});
  std::printf("remote write to 0x1000 (outside the region): %s\n",
              handler.last_outcome() == Outcome::Fault ? "aborted (fault)" : "NOT aborted");
  bool ok = std::strcmp(back, text) == 0 && handler.last_outcome() == Outcome::Fault;
  std::printf("%s\n", ok ? "remote_write: ok" : "remote_write: FAILED");
  return ok ? 0 : 1;
}
