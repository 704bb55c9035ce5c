// SPDX-License-Identifier: MIT
// compile(): the generated function, its machine code (or interpreter), and the persistent
// register state that callers export and import.
#include "exojit/pipes/compile.h"

#include <memory>

#include "exojit/error.h"
#include "generator_p.h"

namespace exojit::pipes {

struct CompiledPipes::Impl {
  Direction direction;
  Backend backend;
  std::vector<std::shared_ptr<const Pipe>> keep;  // the pipes (immutable), for names and reset
  std::vector<const Pipe*> pipes;
  std::vector<size_t> first_slot;
  std::unique_ptr<uint64_t[]> state;  // one 8-byte slot per persistent register
  size_t slots = 0;
  vcode::Module module;
  vcode::Code code;
  std::unique_ptr<vcode::Interpreter> interp;
  Fn* fn = nullptr;
  PipeCost cost;
  std::string plan;

  size_t slot(int pipe, std::string_view reg) const {
    if (pipe < 0 || size_t(pipe) >= pipes.size())
      fail("compiled pipes: no pipe number {} (the list has {})", pipe, pipes.size());
    const Pipe& p = *pipes[size_t(pipe)];
    for (size_t k = 0; k < p.persistent.size(); ++k)
      if (p.persistent[k].name == reg) return first_slot[size_t(pipe)] + k;
    fail("compiled pipes: pipe {} ('{}') has no persistent register '{}'", pipe, p.name, reg);
  }
  Type type_of(int pipe, std::string_view reg) const {
    const Pipe& p = *pipes[size_t(pipe)];
    for (const PersistentInfo& info : p.persistent)
      if (info.name == reg) return info.type;
    return Type::U64;
  }
};

CompiledPipes::CompiledPipes(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CompiledPipes::CompiledPipes(CompiledPipes&&) noexcept = default;
CompiledPipes& CompiledPipes::operator=(CompiledPipes&&) noexcept = default;
CompiledPipes::~CompiledPipes() = default;

size_t CompiledPipes::operator()(void* dst, const void* src, size_t nbytes) {
  if (impl_->fn) return impl_->fn(dst, src, nbytes);
  if (!impl_->interp) impl_->code.entry();  // another machine's code: says so (an Error)
  const uint64_t args[] = {uint64_t(reinterpret_cast<uintptr_t>(dst)),
                           uint64_t(reinterpret_cast<uintptr_t>(src)), uint64_t(nbytes)};
  return size_t(impl_->interp->call(size_t(0), args));
}

CompiledPipes::Fn* CompiledPipes::function() const {
  if (!impl_->fn) fail("compiled pipes: no machine code (compiled for the interpreter)");
  return impl_->fn;
}

CompiledPipes::Persistent CompiledPipes::persistent(int pipe, std::string_view reg) const {
  return Persistent{impl_->slot(pipe, reg), impl_->type_of(pipe, reg)};
}

void CompiledPipes::set(Persistent r, uint64_t value) {
  impl_->state[r.slot] = uint64_t(vcode::normalize_imm(r.type, int64_t(value)));
}

// Narrow registers store only their own bytes: read them back at their type.
uint64_t CompiledPipes::get(Persistent r) const {
  return uint64_t(vcode::normalize_imm(r.type, int64_t(impl_->state[r.slot])));
}

void CompiledPipes::set(int pipe, std::string_view reg, uint64_t value) {
  set(persistent(pipe, reg), value);
}

uint64_t CompiledPipes::get(int pipe, std::string_view reg) const {
  return get(persistent(pipe, reg));
}

void CompiledPipes::reset() {
  for (size_t i = 0; i < impl_->pipes.size(); ++i)
    for (size_t k = 0; k < impl_->pipes[i]->persistent.size(); ++k) {
      const PersistentInfo& info = impl_->pipes[i]->persistent[k];
      impl_->state[impl_->first_slot[i] + k] =
          uint64_t(vcode::normalize_imm(info.type, int64_t(info.initial)));
    }
}

const PipeCost& CompiledPipes::cost() const {
  return impl_->cost;
}
Direction CompiledPipes::direction() const {
  return impl_->direction;
}
const vcode::Module& CompiledPipes::module() const {
  return impl_->module;
}
const vcode::Code& CompiledPipes::code() const {
  return impl_->code;
}
std::string CompiledPipes::plan() const {
  return impl_->plan;
}

namespace {

const char* kind_name(detail::Shape::Kind k) {
  switch (k) {
    case detail::Shape::Copy:
      return "copy";
    case detail::Shape::Map:
      return "lane-wise map";
    case detail::Shape::Reduction:
      return "reduction";
    default:
      return "generic";
  }
}

}  // namespace

CompiledPipes compile(const PipeList& pipes, Direction direction, const CompileOptions& options) {
  if (pipes.empty()) fail("compile: the pipe list is empty");
  int vbits = options.vector_bits;
  const int available = options.backend == Backend::Native ? vcode::vector_width(options.codegen)
                                                           : 256;  // the interpreter has all
  if (vbits < 0) vbits = available;
  if (vbits != 0 && vbits != 128 && vbits != 256)
    fail("compile: vector width {} is not 0, 128 or 256", vbits);
  if (vbits > available)
    fail("compile: {}-bit vectors are not available on this CPU (at most {})", vbits, available);

  auto impl = std::make_unique<CompiledPipes::Impl>();
  impl->direction = direction;
  impl->backend = options.backend;
  for (size_t i = 0; i < pipes.size(); ++i) {
    impl->keep.push_back(pipes.share(i));
    impl->pipes.push_back(impl->keep.back().get());
    impl->first_slot.push_back(impl->slots);
    impl->slots += pipes[i].persistent.size();
  }
  impl->state = std::make_unique<uint64_t[]>(std::max<size_t>(impl->slots, 1));
  detail::Generator gen(impl->module, pipes, direction, vbits, impl->state.get());
  impl->cost = gen.generate();
  for (size_t i = 0; i < pipes.size(); ++i) {
    detail::Shape s = detail::analyze(pipes[i]);
    impl->plan += fmt::format("{} (gauge {}{}{}): {}{}\n", pipes[i].name, pipes[i].gauge,
                              pipes[i].commutative() ? ", commutative" : "",
                              pipes[i].non_modifying() ? ", non-modifying" : "", kind_name(s.kind),
                              s.vector_ok && impl->cost.vector_bits ? ", vectorized" : "");
  }
  if (options.backend == Backend::Native) {
    impl->code = vcode::compile(impl->module, options.codegen);
    // Code for another machine (CompileOptions::codegen.target) can be looked at, not run.
    if (impl->code.runnable()) impl->fn = impl->code.as<CompiledPipes::Fn>("pipes");
  } else {
    impl->interp = std::make_unique<vcode::Interpreter>(impl->module);
  }
  CompiledPipes out(std::move(impl));
  out.reset();
  return out;
}

}  // namespace exojit::pipes
