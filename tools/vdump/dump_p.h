// SPDX-License-Identifier: MIT
// The dump: per function, a header, its vcode listing and its machine code (addresses, bytes,
// instructions, where branches and calls go), or its vcode lines each with the machine code it
// became; with the LLVM tier, its IR and code too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "exojit/vcode.h"
#include "options_p.h"

namespace vdump {

// Prints module m compiled as code_in, as the options ask (o.listing, o.assembly, o.lines);
// `source` names it. llvm: the LLVM tier's code and the module's IR text, when --tier llvm.
void dump(const exojit::vcode::Module& m, const exojit::vcode::Code& code_in, const Options& o,
          std::string_view source, const exojit::vcode::Code* llvm = nullptr,
          const std::string& llvm_ir_text = "");

// "01 02 ff": n bytes in hex.
std::string hex_bytes(const uint8_t* p, size_t n);

// "(u64, p) -> u32".
std::string signature_text(const exojit::vcode::Signature& sig);

}  // namespace vdump
