import ArgumentParser
import BPFLoader
import BPFSim
import Foundation

/// `bpfsim inspect`: what a BPF object file holds.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the programs and maps of a clang-compiled BPF object file.",
        discussion: """
            Programs are found as libbpf finds them (each global function in an executable \
            section; the type comes from the section name); maps come from '.maps' (BTF), the \
            legacy 'maps' section and global data (.rodata, .data, .bss). --json output is \
            described in docs/json.md.
            """
    )

    @Argument(help: "A BPF object file (clang -target bpf -c).")
    var object: String

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func run() throws {
        let loaded: BPFObject
        do {
            loaded = try BPFObject(path: object)
        } catch {
            if json {
                printJSON(InspectReport(error: error))
            } else {
                printError("error: \(error)")
            }
            throw ExitCode(1)
        }
        if json {
            printJSON(InspectReport(loaded))
            return
        }
        print(
            "\(object): \(loaded.programs.count) program\(loaded.programs.count == 1 ? "" : "s"), "
                + "\(loaded.maps.count) map\(loaded.maps.count == 1 ? "" : "s")"
                + (loaded.license.map { ", license \"\($0)\"" } ?? ""))
        print("")
        print("programs:")
        print(ObjectListing.programTable(loaded), terminator: "")
        if !loaded.maps.isEmpty {
            print("")
            print("maps:")
            print(ObjectListing.mapTable(loaded), terminator: "")
        }
    }
}

/// `bpfsim inspect --json` (see docs/json.md).
struct InspectReport: Encodable {
    var version = 1
    var path: String?
    var license: String?
    var kernelVersion: UInt32?
    var programs: [ProgramReport]?
    var maps: [MapReport]?
    var error: ErrorReport?

    struct ProgramReport: Encodable {
        var name: String
        var section: String
        var type: String
        var expectedAttachType: UInt32
        var attachTarget: String?
        var insns: Int
        var functions: [String]
    }

    struct MapReport: Encodable {
        var name: String
        var type: String
        var keySize: Int
        var valueSize: Int
        var maxEntries: Int
        var flags: UInt32
        var mapExtra: UInt64?
        var pinning: String?
        var section: String?
        var initialEntries: Int?
        var inner: InnerReport?
    }

    struct InnerReport: Encodable {
        var type: String
        var keySize: Int
        var valueSize: Int
        var maxEntries: Int
        var flags: UInt32
    }

    struct ErrorReport: Encodable {
        var code: String
        var message: String
        var section: String?
        var offset: Int?
    }

    init(_ object: BPFObject) {
        path = object.path
        license = object.license
        kernelVersion = object.kernelVersion
        programs = object.programs.map {
            ProgramReport(
                name: $0.name, section: $0.section, type: $0.type.kernelName,
                expectedAttachType: $0.expectedAttachType, attachTarget: $0.attachTarget,
                insns: $0.instructions.count, functions: $0.functions.map(\.name))
        }
        maps = object.maps.map { map in
            MapReport(
                name: map.name, type: map.type.kernelName, keySize: map.keySize, valueSize: map.valueSize,
                maxEntries: map.maxEntries, flags: map.flags, mapExtra: map.mapExtra == 0 ? nil : map.mapExtra,
                pinning: map.pinning == .byName ? "by_name" : nil, section: map.section,
                initialEntries: map.initialEntries.isEmpty ? nil : map.initialEntries.count,
                inner: map.inner.map {
                    InnerReport(
                        type: $0.spec.type.kernelName, keySize: $0.spec.keySize, valueSize: $0.spec.valueSize,
                        maxEntries: $0.spec.maxEntries, flags: $0.spec.flags)
                })
        }
    }

    init(error: Error) {
        if let error = error as? LoaderError {
            self.error = ErrorReport(
                code: error.code, message: error.description, section: error.section, offset: error.offset)
        } else {
            self.error = ErrorReport(code: "input", message: "\(error)")
        }
    }
}

/// Prints the disassembly of an object's programs, with their source lines.
enum ObjectDisassembly {
    static func print(path: String, program name: String?) throws {
        let object: BPFObject
        let programs: [ObjectProgram]
        do {
            object = try BPFObject(path: path)
            programs = try name.map { [try object.program(named: $0)] } ?? object.programs
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        for (index, program) in programs.enumerated() {
            if index > 0 { BPFSimCommands.print("") }
            BPFSimCommands.print(
                "# \(program.name): section \(program.section), type \(program.type.kernelName), "
                    + "\(program.instructions.count) instructions")
            BPFSimCommands.print(ObjectListing.disassembly(program, maps: object.maps), terminator: "")
        }
    }
}
