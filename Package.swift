// swift-tools-version:6.0
//
// bpfsim: a userspace eBPF virtual machine, loader and test harness.
// The target graph is described in docs/architecture.md; keep the two in step.

import PackageDescription

let package = Package(
    name: "bpfsim",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "BPFSim", targets: ["BPFSim"]),
        .executable(name: "bpfsim", targets: ["bpfsim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The instruction model: opcode table, decoding, validation, assembler and
        // disassembler. Depends on nothing, not even Foundation.
        .target(name: "BPFCore"),

        // What programs run against: guest address space, faults, helper registry,
        // the injectable world (clock, randomness, CPU id).
        .target(name: "BPFRuntime", dependencies: ["BPFCore"]),

        // The reference executor: one bounds-checked loop.
        .target(name: "BPFInterpreter", dependencies: ["BPFCore", "BPFRuntime"]),

        // The facade users import: load a program, pick an engine, run, compare.
        .target(
            name: "BPFSim", dependencies: ["BPFCore", "BPFRuntime", "BPFInterpreter", "BPFLoader", "BPFVerifier"]),

        // libelf, reached only through BPFLoader; no Elf* leaves that target.
        .systemLibrary(name: "CLibELF", pkgConfig: "libelf", providers: [.apt(["libelf-dev"])]),

        // A static verifier: predicts the kernel verifier's verdict and explains refusals.
        .target(name: "BPFVerifier", dependencies: ["BPFCore", "BPFRuntime"]),

        // Clang-compiled BPF ELF objects to programs and map specs: BTF and legacy maps,
        // global data, relocations, subprograms, BTF line info.
        .target(name: "BPFLoader", dependencies: ["BPFCore", "BPFRuntime", "CLibELF"]),

        // The subcommands, as a library so tests can call them.
        .target(
            name: "BPFSimCommands",
            dependencies: [
                "BPFSim",
                "BPFLoader",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "bpfsim", dependencies: ["BPFSimCommands"]),

        // Locations of the repository's and ../shared's test inputs, for every test target.
        .target(name: "BPFTestSupport", path: "Tests/BPFTestSupport"),
        .testTarget(name: "BPFCoreTests", dependencies: ["BPFCore", "BPFTestSupport"]),
        .testTarget(name: "BPFInterpreterTests", dependencies: ["BPFSim", "BPFTestSupport"]),
        .testTarget(name: "BPFSimCommandsTests", dependencies: ["BPFSimCommands", "BPFTestSupport"]),
        .testTarget(name: "BPFVerifierTests", dependencies: ["BPFSim", "BPFVerifier", "BPFTestSupport"]),
        .testTarget(name: "BPFLoaderTests", dependencies: ["BPFLoader", "BPFCore", "BPFRuntime", "BPFTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
