// SPDX-License-Identifier: MIT
// exojit vcode: everything a client needs to generate, inspect and run code.
#pragma once

#include "exojit/error.h"
#include "exojit/vcode/builder.h"
#include "exojit/vcode/code.h"
#include "exojit/vcode/disasm.h"
#include "exojit/vcode/interp.h"
#include "exojit/vcode/ir.h"
#include "exojit/vcode/text.h"
#include "exojit/vcode/tiered.h"
#include "exojit/vcode/verify.h"
