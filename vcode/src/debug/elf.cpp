// SPDX-License-Identifier: MIT
// The ELF64 writer (elf_p.h). Field order and values are those of the System V gABI ("ELF-64
// Object File Format"): header, then the sections' contents, then the section header table.
#include "bytes_p.h"
#include "elf_p.h"

namespace exojit::vcode::detail {

namespace {

enum : uint32_t {
  kShtProgbits = 1,
  kShtSymtab = 2,
  kShtStrtab = 3,
  kShtNobits = 8,
};
constexpr uint64_t kShfAlloc = 0x2, kShfExecinstr = 0x4;
constexpr uint16_t kEtRel = 1, kEmX86_64 = 62, kEmAArch64 = 183;
constexpr uint8_t kStbGlobal = 1, kSttFunc = 2;

struct Section {
  uint32_t name = 0;  // offset in .shstrtab
  uint32_t type = 0;
  uint64_t flags = 0, addr = 0, offset = 0, size = 0;
  uint32_t link = 0, info = 0;
  uint64_t align = 1, entsize = 0;
};

// A string table: "\0" then each name.
struct Strings {
  Bytes b;
  Strings() { b.u8(0); }
  uint32_t add(const std::string& s) {
    uint32_t at = uint32_t(b.size());
    b.str(s);
    return at;
  }
};

}  // namespace

std::vector<uint8_t> write_elf(const ElfObject& o) {
  Strings shstr, str;
  std::vector<Section> sh(1);  // [0]: the null section
  Bytes out;
  out.bytes(
      "\x7f"
      "ELF",
      4);
  out.u8(2), out.u8(1), out.u8(1), out.u8(0);  // 64-bit, little-endian, version 1, System V
  out.align(16);
  out.u16(kEtRel);
  out.u16(o.target == Target::AArch64 ? kEmAArch64 : kEmX86_64);
  out.u32(1);  // e_version
  out.u64(0);  // e_entry
  out.u64(0);  // e_phoff
  size_t shoff_at = out.size();
  out.u64(0);              // e_shoff, patched
  out.u32(0);              // e_flags
  out.u16(64);             // e_ehsize
  out.u16(0), out.u16(0);  // no program headers
  out.u16(64);             // e_shentsize
  size_t shnum_at = out.size();
  out.u16(0), out.u16(0);  // e_shnum, e_shstrndx: patched

  Section text;
  text.name = shstr.add(".text");
  text.type = kShtNobits;
  text.flags = kShfAlloc | kShfExecinstr;
  text.addr = o.text_address;
  text.offset = out.size();
  text.size = o.text_size;
  text.align = 16;
  sh.push_back(text);
  const uint16_t text_index = 1;

  // Section names go into .shstrtab before it is written, as the last section.
  auto add_section = [&](uint32_t name, uint32_t type, const std::vector<uint8_t>& data,
                         uint64_t align) {
    out.align(size_t(align));
    Section s;
    s.name = name;
    s.type = type;
    s.offset = out.size();
    s.size = data.size();
    s.align = align;
    out.bytes(data.data(), data.size());
    sh.push_back(s);
    return sh.size() - 1;
  };
  for (const auto& [name, data] : o.sections) add_section(shstr.add(name), kShtProgbits, data, 1);

  Bytes symtab;
  symtab.bytes(std::vector<uint8_t>(24, 0).data(), 24);  // [0]: the null symbol
  for (const ElfSymbol& f : o.functions) {
    symtab.u32(str.add(f.name));
    symtab.u8(kStbGlobal << 4 | kSttFunc);
    symtab.u8(0);  // default visibility
    symtab.u16(text_index);
    symtab.u64(f.offset);  // section-relative in a relocatable object
    symtab.u64(f.size);
  }
  size_t symtab_index = add_section(shstr.add(".symtab"), kShtSymtab, symtab.data(), 8);
  size_t strtab_index = add_section(shstr.add(".strtab"), kShtStrtab, str.b.data(), 1);
  sh[symtab_index].link = uint32_t(strtab_index);
  sh[symtab_index].info = 1;  // the first global symbol
  sh[symtab_index].entsize = 24;
  uint32_t shstrtab_name = shstr.add(".shstrtab");
  size_t shstrtab_index = add_section(shstrtab_name, kShtStrtab, shstr.b.data(), 1);

  out.align(8);
  out.patch(shoff_at, out.size(), 8);
  out.patch(shnum_at, sh.size(), 2);
  out.patch(shnum_at + 2, shstrtab_index, 2);
  for (const Section& s : sh) {
    out.u32(s.name), out.u32(s.type);
    out.u64(s.flags), out.u64(s.addr), out.u64(s.offset), out.u64(s.size);
    out.u32(s.link), out.u32(s.info);
    out.u64(s.align), out.u64(s.entsize);
  }
  return out.take();
}

}  // namespace exojit::vcode::detail
