// SPDX-License-Identifier: MIT
// Regression driver for the fuzz targets: runs LLVMFuzzerTestOneInput on every file of the
// given directories (and on the given files), the way the fuzzer would, without libFuzzer.
//
//   fuzz_parse_corpus [--valid] PATH...
//
// Inputs are expected to be rejected (exojit::Error) or accepted according to their names:
// "bad_*" must be rejected, "ok_*" must parse; paths after --valid must all parse; other names
// (inputs saved from fuzzing runs) may do either. A failed check of the target aborts.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern int exojit_fuzz_parse_outcome;

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  struct Input {
    fs::path path;
    bool must_parse;
  };
  std::vector<Input> inputs;
  bool valid = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--valid") {
      valid = true;
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(arg))
        if (entry.is_regular_file()) files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      for (const fs::path& p : files) inputs.push_back({p, valid});
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back({arg, valid});
    } else {
      std::fprintf(stderr, "fuzz_parse_corpus: no such file or directory: %s\n", arg.c_str());
      return 2;
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: fuzz_parse_corpus [--valid] PATH...\n");
    return 2;
  }

  int failures = 0, parsed = 0;
  for (const Input& in : inputs) {
    std::ifstream f(in.path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f && !f.eof()) {
      std::fprintf(stderr, "fuzz_parse_corpus: cannot read %s\n", in.path.c_str());
      return 2;
    }
    std::fprintf(stderr, "%s\n", in.path.c_str());  // the last line names the input if we abort
    try {
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FAIL %s: exception other than exojit::Error: %s\n", in.path.c_str(),
                   e.what());
      ++failures;
      continue;
    }
    bool ok = exojit_fuzz_parse_outcome == 1;
    parsed += ok;
    std::string name = in.path.filename().string();
    bool must_parse = in.must_parse || name.rfind("ok_", 0) == 0;
    bool must_fail = !in.must_parse && name.rfind("bad_", 0) == 0;
    if ((must_parse && !ok) || (must_fail && ok)) {
      std::fprintf(stderr, "FAIL %s: expected to %s\n", in.path.c_str(),
                   must_parse ? "parse" : "be rejected");
      ++failures;
    }
  }
  std::printf("fuzz_parse_corpus: %zu inputs, %d parsed, %zu rejected, %d failures\n",
              inputs.size(), parsed, inputs.size() - size_t(parsed), failures);
  return failures ? 1 : 0;
}
