import CCapstone

/// One decoded x86-64 instruction, as capstone prints it in Intel syntax.
public struct X86Instruction: Sendable, Hashable {
    public let address: UInt64
    public let bytes: [UInt8]
    public let mnemonic: String
    public let operands: String

    /// `mnemonic operands`, the way tests and listings compare instructions.
    public var text: String { operands.isEmpty ? mnemonic : mnemonic + " " + operands }
}

/// Why disassembly could not start (capstone refused to open a handle).
public struct X86DisassemblyError: Error, CustomStringConvertible {
    public let description: String
}

/// A small wrapper over capstone for x86-64 code. The capstone handle never leaves this
/// file: each call opens one, decodes, and closes it.
public enum X86Disassembler {
    /// Decodes `bytes` as if they were loaded at `address`. Decoding stops at the first
    /// byte sequence capstone does not recognise; the rest is returned as one `(bad)` line
    /// so a listing never silently drops bytes.
    public static func disassemble(_ bytes: [UInt8], address: UInt64 = 0) throws(X86DisassemblyError)
        -> [X86Instruction]
    {
        var handle: csh = 0
        guard cs_open(CS_ARCH_X86, CS_MODE_64, &handle) == CS_ERR_OK else {
            throw X86DisassemblyError(description: "capstone could not open an x86-64 handle")
        }
        defer { cs_close(&handle) }
        guard !bytes.isEmpty else { return [] }

        var decoded: UnsafeMutablePointer<cs_insn>? = nil
        let count = bytes.withUnsafeBufferPointer { buffer in
            cs_disasm(handle, buffer.baseAddress, buffer.count, address, 0, &decoded)
        }
        defer { if let decoded { cs_free(decoded, count) } }

        var result: [X86Instruction] = []
        result.reserveCapacity(count)
        var consumed = 0
        for index in 0..<count {
            var insn = decoded![index]
            let size = Int(insn.size)
            let mnemonic = withUnsafeBytes(of: &insn.mnemonic) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            let operands = withUnsafeBytes(of: &insn.op_str) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            let start = Int(insn.address - address)
            result.append(
                X86Instruction(
                    address: insn.address, bytes: Array(bytes[start..<start + size]), mnemonic: mnemonic,
                    operands: operands))
            consumed = start + size
        }
        if consumed < bytes.count {
            result.append(
                X86Instruction(
                    address: address + UInt64(consumed), bytes: Array(bytes[consumed...]), mnemonic: "(bad)",
                    operands: ""))
        }
        return result
    }
}
