// SPDX-License-Identifier: MIT
// exojit::pipes — dynamic integrated layer processing: pipes, pipe lists, the pipe compiler,
// the pipe library and its C references.
#pragma once

#include "exojit/pipes/compile.h"
#include "exojit/pipes/library.h"
#include "exojit/pipes/pipe.h"
#include "exojit/pipes/reference.h"
