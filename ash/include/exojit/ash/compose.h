// SPDX-License-Identifier: MIT
// Dynamic protocol composition ([ASH96], 2.3): protocol layers, each with a body, an abort and
// a commit part, composed at run time into ONE handler.
//
//   Ethernet eth; Ipv4 ip(my_ip); Udp udp(port); MyApp app(...);
//   HandlerBuilder h("server");
//   compose(h, {&eth, &ip, &udp, &app});
//   Handler handler(h, env, options);
//
// The composed handler runs, in this order:
//   1. the bodies, lowest layer first: each examines and consumes its header; a body may add
//      pipes to the message's data pass and say where the data goes (deliver_to);
//   2. the data pass: the rest of the message goes once through ONE pipe list holding every
//      layer's pipes (integrated layer processing), to the destination if a layer gave one,
//      else read only (scan);
//   3. the commit parts, in FIFO order (lowest layer first), then commit().
// Failures (LayerContext::fail):
//   - a body failing propagates down: its own abort part, then those of the layers below it
//     run (highest first), and the handler aborts (the message goes to the environment's ring);
//   - a commit part failing propagates up: the abort parts of the layers above it run (the
//     bodies it affected), lowest first, and the handler aborts.
// Bodies and commit parts share the handler's registers: values a layer keeps from its body for
// its commit part must be variables (RegClass::Var); LayerContext::shared gives layers
// named registers to pass values to each other.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "exojit/ash/builder.h"
#include "exojit/pipes/pipe.h"

namespace exojit::ash {

class LayerContext;

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string_view name() const = 0;
  virtual void body(LayerContext& c) = 0;
  virtual void commit(LayerContext&) {}
  virtual void abort(LayerContext&) {}
};

class LayerContext {
 public:
  HandlerBuilder& b;

  // Fails the current part (body or commit): jumps to the abort path described above.
  void fail();
  // Fails when the condition `a op b` holds (a shorthand over fail()).
  void fail_if(vcode::Op branch, Reg a, int64_t imm);
  void fail_if(vcode::Op branch, Reg a, Reg b);

  // The data pass: adds a pipe (any gauge and attributes, as PipeList::add) and returns its id
  // in the fused list; after the data pass, pipe_get reads its persistent registers.
  int add_pipe(std::string name, int gauge, unsigned attrs, const pipes::PipeList::Definition& d);
  int add_library_pipe(int (*make)(pipes::PipeList&));
  // The data goes to application address `va` (a register that must stay live: a Var).
  void deliver_to(Reg va);
  // Commit parts: d = persistent register `reg` of data-pass pipe `pipe`.
  void pipe_get(Reg d, int pipe, const std::string& reg);

  // A register shared by name between layers (a Var of type t, created at first use).
  Reg shared(const std::string& name, vcode::Type t);

 private:
  friend void compose(HandlerBuilder& h, const std::vector<Layer*>& layers);
  explicit LayerContext(HandlerBuilder& h) : b(h) {}
  vcode::Label* fail_label_ = nullptr;
  bool* fail_used_ = nullptr;
  pipes::PipeList data_;
  int data_list_ = -1;
  Reg deliver_;
  std::map<std::string, Reg> shared_;
};

// Composes `layers` (lowest first) into h and finishes it.
void compose(HandlerBuilder& h, const std::vector<Layer*>& layers);

// Library layers for the receive path of UDP over IPv4 over Ethernet.
//   Ethernet: EtherType 0x0800, header skipped.
//   Ipv4:     version 4 without options, protocol UDP, destination `ip`, header checksum
//             verified; leaves the pseudo-header sum in shared register "ip.pseudo" (u32).
//   Udp:      destination port `port`; its checksum pipe joins the data pass and the commit
//             part verifies the checksum (when the sender computed one).
class EthernetLayer : public Layer {
 public:
  std::string_view name() const override { return "ethernet"; }
  void body(LayerContext& c) override;
};

class Ipv4Layer : public Layer {
 public:
  explicit Ipv4Layer(uint32_t ip) : ip_(ip) {}
  std::string_view name() const override { return "ipv4"; }
  void body(LayerContext& c) override;

 private:
  uint32_t ip_;
};

class UdpLayer : public Layer {
 public:
  explicit UdpLayer(uint16_t port) : port_(port) {}
  std::string_view name() const override { return "udp"; }
  void body(LayerContext& c) override;
  void commit(LayerContext& c) override;

 private:
  uint16_t port_;
  int cksum_pipe_ = -1;
  Reg sum_;
};

}  // namespace exojit::ash
