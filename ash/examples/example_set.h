// SPDX-License-Identifier: MIT
// The example handlers by name, installed-ready for a testbed (what `vdump --ash NAME` shows).
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "exojit/ash/handler.h"
#include "testbed.h"

namespace exojit::ash::examples {

// "remote_write", "remote_increment", "udp_echo", "cache_server"; an unknown name is an Error.
std::unique_ptr<Handler> make_example(std::string_view name, Testbed& t,
                                      Sandbox s = Sandbox::Checked, bool harden = true);
const std::vector<std::string_view>& example_names();

}  // namespace exojit::ash::examples
