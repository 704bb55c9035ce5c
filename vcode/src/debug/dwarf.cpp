// SPDX-License-Identifier: MIT
// DWARF 4 sections for generated code (dwarf_p.h). The encodings are those of the DWARF 4
// standard (sections 6.2 line programs, 6.4 call frame information, 7 data representation).
#include <filesystem>

#include "bytes_p.h"
#include "dwarf_p.h"
#include "exojit/error.h"

namespace exojit::vcode::detail {

namespace {

// Tags, attributes, forms, line and frame opcodes used here (DWARF 4, section 7).
enum : uint8_t {
  kTagCompileUnit = 0x11,
  kTagSubprogram = 0x2e,
  kAtName = 0x03,
  kAtStmtList = 0x10,
  kAtLowPc = 0x11,
  kAtHighPc = 0x12,
  kAtLanguage = 0x13,
  kAtCompDir = 0x1b,
  kAtProducer = 0x25,
  kAtDeclFile = 0x3a,
  kAtDeclLine = 0x3b,
  kAtExternal = 0x3f,
  kAtFrameBase = 0x40,
  kFormAddr = 0x01,
  kFormData2 = 0x05,
  kFormData4 = 0x06,
  kFormData8 = 0x07,
  kFormString = 0x08,
  kFormData1 = 0x0b,
  kFormSecOffset = 0x17,
  kFormExprloc = 0x18,
  kFormFlagPresent = 0x19,
  kOpCallFrameCfa = 0x9c,
  kLnsCopy = 0x01,
  kLnsAdvancePc = 0x02,
  kLnsAdvanceLine = 0x03,
  kLneEndSequence = 0x01,
  kLneSetAddress = 0x02,
  kCfaAdvanceLoc4 = 0x04,
  kCfaOffsetExtended = 0x05,
  kCfaRememberState = 0x0a,
  kCfaRestoreState = 0x0b,
  kCfaDefCfa = 0x0c,
  kCfaDefCfaOffset = 0x0e,
  kCfaOffset = 0x80,  // | register (< 64)
};
constexpr uint16_t kLangAssembler = 0x8001;  // DW_LANG_Mips_Assembler: gdb shows it as asm
constexpr int64_t kDataAlign = -8;           // every save slot is 8-byte aligned

Bytes abbreviations() {
  Bytes b;
  auto abbrev = [&](uint8_t code, uint8_t tag, bool children,
                    std::initializer_list<std::pair<uint8_t, uint8_t>> attrs) {
    b.uleb(code);
    b.uleb(tag);
    b.u8(children ? 1 : 0);
    for (auto [at, form] : attrs) b.uleb(at), b.uleb(form);
    b.u8(0), b.u8(0);
  };
  abbrev(1, kTagCompileUnit, true,
         {{kAtProducer, kFormString},
          {kAtLanguage, kFormData2},
          {kAtName, kFormString},
          {kAtCompDir, kFormString},
          {kAtLowPc, kFormAddr},
          {kAtHighPc, kFormData8},
          {kAtStmtList, kFormSecOffset}});
  abbrev(2, kTagSubprogram, false,
         {{kAtName, kFormString},
          {kAtExternal, kFormFlagPresent},
          {kAtDeclFile, kFormData1},
          {kAtDeclLine, kFormData4},
          {kAtLowPc, kFormAddr},
          {kAtHighPc, kFormData8},
          {kAtFrameBase, kFormExprloc}});
  b.u8(0);
  return b;
}

Bytes debug_info(const std::string& file, uint64_t low, uint64_t high,
                 const std::vector<DwarfFunction>& functions) {
  Bytes b;
  b.u32(0);  // unit_length, patched below
  b.u16(4);  // version
  b.u32(0);  // .debug_abbrev offset
  b.u8(8);   // address size
  b.uleb(1);
  b.str("exojit vcode");
  b.u16(kLangAssembler);
  b.str(file);
  b.str(std::filesystem::path(file).parent_path().string());
  b.u64(low);
  b.u64(high - low);
  b.u32(0);  // .debug_line offset
  for (const DwarfFunction& f : functions) {
    b.uleb(2);
    b.str(f.name);
    b.u8(1);  // the listing, file 1 of the line program
    b.u32(f.line);
    b.u64(f.address);
    b.u64(f.size);
    b.uleb(1);  // frame base: the canonical frame address
    b.u8(kOpCallFrameCfa);
  }
  b.u8(0);  // end of the unit's children
  b.patch(0, b.size() - 4, 4);
  return b;
}

Bytes debug_line(const std::string& file, const std::vector<DwarfFunction>& functions) {
  Bytes b;
  b.u32(0);  // unit_length
  b.u16(4);  // version
  size_t header_length_at = b.size();
  b.u32(0);                   // header_length
  b.u8(1);                    // minimum_instruction_length
  b.u8(1);                    // maximum_operations_per_instruction
  b.u8(1);                    // default_is_stmt
  b.u8(uint8_t(int8_t(-5)));  // line_base
  b.u8(14);                   // line_range
  b.u8(13);                   // opcode_base
  for (uint8_t n : {0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1}) b.u8(n);  // standard_opcode_lengths
  b.u8(0);                                                         // no include_directories
  b.str(file);
  b.uleb(0), b.uleb(0), b.uleb(0);  // directory, modification time, length
  b.u8(0);                          // end of file_names
  b.patch(header_length_at, b.size() - header_length_at - 4, 4);

  for (const DwarfFunction& f : functions) {
    b.u8(0), b.uleb(9), b.u8(kLneSetAddress), b.u64(f.address);
    uint64_t address = 0;
    int64_t line = 1;
    for (const DwarfFunction::Line& l : f.lines) {
      if (l.offset > address) b.u8(kLnsAdvancePc), b.uleb(l.offset - address);
      if (int64_t(l.line) != line) b.u8(kLnsAdvanceLine), b.sleb(int64_t(l.line) - line);
      b.u8(kLnsCopy);
      address = l.offset;
      line = l.line;
    }
    if (f.size > address) b.u8(kLnsAdvancePc), b.uleb(f.size - address);
    b.u8(0), b.uleb(1), b.u8(kLneEndSequence);
  }
  b.patch(0, b.size() - 4, 4);
  return b;
}

// The CFA at entry, the return address's rule and the stack pointer, per target.
struct FrameConvention {
  unsigned sp;
  unsigned return_address;
  int32_t entry_cfa;  // CFA = sp + this at the first instruction
};

FrameConvention convention(Target t) {
  if (t == Target::AArch64) return {kDwarfA64Sp, kDwarfA64ReturnAddress, 0};
  return {kDwarfX64Sp, kDwarfX64ReturnAddress, 8};  // the call pushed the return address
}

void offset_rule(Bytes& b, unsigned reg, int32_t cfa_minus_slot) {
  if (cfa_minus_slot <= 0 || cfa_minus_slot % -kDataAlign)
    fail("debug info: a register saved at CFA-{}, not a multiple of 8 below it", cfa_minus_slot);
  uint64_t factored = uint64_t(cfa_minus_slot / -kDataAlign);
  if (reg < 64) {
    b.u8(uint8_t(kCfaOffset | reg));
  } else {
    b.u8(kCfaOffsetExtended);
    b.uleb(reg);
  }
  b.uleb(factored);
}

Bytes debug_frame(Target target, const std::vector<DwarfFunction>& functions) {
  const FrameConvention c = convention(target);
  Bytes b;
  // The CIE (version 1): what holds at every function's entry.
  b.u32(0);
  b.u32(0xffffffff);  // CIE_id
  b.u8(1);            // version
  b.u8(0);            // no augmentation
  b.uleb(1);          // code alignment factor
  b.sleb(kDataAlign);
  b.u8(uint8_t(c.return_address));
  b.u8(kCfaDefCfa), b.uleb(c.sp), b.uleb(uint64_t(c.entry_cfa));
  if (c.entry_cfa) offset_rule(b, c.return_address, c.entry_cfa);  // x86-64: at CFA-8
  b.align(8);                                                      // DW_CFA_nop
  b.patch(0, b.size() - 4, 4);

  for (const DwarfFunction& f : functions) {
    size_t start = b.size();
    b.u32(0);
    b.u32(0);  // CIE_pointer: the CIE above
    b.u64(f.address);
    b.u64(f.size);
    uint32_t at = 0;
    int32_t cfa = c.entry_cfa;  // from sp
    bool in_reg = false;        // the CFA is found from another register (a stack probe loop)
    std::vector<int32_t> remembered;
    for (const CodeNotes::Frame& e : f.frame) {
      if (e.offset > at) b.u8(kCfaAdvanceLoc4), b.u32(e.offset - at), at = e.offset;
      switch (e.kind) {
        case CodeNotes::Frame::kSp:
          cfa += e.value;
          if (in_reg)
            b.u8(kCfaDefCfa), b.uleb(c.sp), b.uleb(uint64_t(cfa));
          else
            b.u8(kCfaDefCfaOffset), b.uleb(uint64_t(cfa));
          in_reg = false;
          break;
        case CodeNotes::Frame::kCfaIn:
          b.u8(kCfaDefCfa), b.uleb(e.reg), b.uleb(uint64_t(cfa + e.value));
          in_reg = true;
          break;
        case CodeNotes::Frame::kSaved:
          offset_rule(b, e.reg, cfa - e.value);
          break;
        case CodeNotes::Frame::kRemember:
          remembered.push_back(cfa);
          b.u8(kCfaRememberState);
          break;
        case CodeNotes::Frame::kRestore:
          if (remembered.empty()) fail("debug info: @{}: a return without an epilogue", f.name);
          cfa = remembered.back();
          remembered.pop_back();
          b.u8(kCfaRestoreState);
          break;
      }
    }
    b.align(8);
    b.patch(start, b.size() - start - 4, 4);
  }
  return b;
}

}  // namespace

DwarfSections make_dwarf(Target target, const std::string& file, uint64_t low, uint64_t high,
                         const std::vector<DwarfFunction>& functions) {
  return DwarfSections{abbreviations().take(), debug_info(file, low, high, functions).take(),
                       debug_line(file, functions).take(), debug_frame(target, functions).take()};
}

}  // namespace exojit::vcode::detail
