// SPDX-License-Identifier: MIT
// Lowering as the builder records (Builder::lower_as_recorded; private header): the x86-64 fast
// tier's machine code made one record at a time while the client builds the function, the way
// VCODE emitted from its macros, so that compile() installs it without a second walk over the
// records.
//
// The records are still made and checked exactly as without it (the module stays complete for
// the interpreter, the printer, the verifier, the other back ends, the ASH sandbox), and the
// code is the bytes the usual lowering makes of them. Whether compile() may take it is decided
// from the data alone (take_recorded_code): one function, verified, its records, registers,
// locals, parameters, signature and called C functions equal to the copies taken when it was
// lowered, the frame they lay out the frame it was lowered with, the same instruction set and
// blinding asked for, and not installed before; anything else lowers the records as usual.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "backend_p.h"
#include "exojit/vcode/builder.h"
#include "exojit/vcode/code.h"

namespace exojit::vcode::detail {

// (class RecordLowering, x64/as_recorded.cpp, and RecordLoweringPtr: builder.h)

// A lowering for the function `m`'s builder records, or null when `options` ask for what only
// compile() does (another target, the LLVM tier, line tables and debuggers).
RecordLoweringPtr start_record_lowering(const Module& m, const CompileOptions& options);
// Lowers the records f has that were not lowered yet (the builder's calls that record do, see
// lower_last in builder.h). False: it gave up (a call to another
// function of the module, an error the usual lowering will report); the records stay as they are.
bool lower_new_records(RecordLowering& l, const Function& f);
// Whether it blinds constants (Builder::own_constant then makes it give up: the record is
// lowered already).
bool lowering_blinds(const RecordLowering& l);
// After the builder verified f: the code, or null when it gave up.
std::shared_ptr<RecordedCode> finish_record_lowering(RecordLowering& l, const Function& f);

// The code of m's function as it was recorded, when compile() of m with these instruction sets
// and blinding may install it (above); taken at most once.
std::optional<MachineCode> take_recorded_code(const Module& m, const X64Features& features,
                                              bool blind);

// compile()'s choice of x86-64 instructions (code.cpp).
X64Features x64_features(const CompileOptions& options);

}  // namespace exojit::vcode::detail
