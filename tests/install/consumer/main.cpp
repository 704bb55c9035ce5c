// Generates, compiles and calls a function using only the installed headers and library.
#include <exojit/vcode.h>

#include <cstdio>

int main() {
  using namespace exojit::vcode;
  Module m;
  Builder b(m, "twice_plus_one", Type::I64, {Type::I64});
  b.lsh(b.arg(0), b.arg(0), 1);
  b.add(b.arg(0), b.arg(0), 1);
  b.ret(b.arg(0));
  b.finish();
  Code code = compile(m);
  long r = long(code.as<int64_t(int64_t)>()(20));
  std::printf("twice_plus_one(20) = %ld\n", r);
  return r == 41 ? 0 : 1;
}
