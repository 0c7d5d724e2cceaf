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
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
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

        // The x86-64 JIT, a sibling of the interpreter: a pure encoder, the compiler,
        // executable memory (never writable and executable at once), helper trampolines.
        .target(name: "BPFJIT", dependencies: ["BPFCore", "BPFRuntime"]),

        // capstone, reached only through X86Disassembly.
        .systemLibrary(name: "CCapstone", pkgConfig: "capstone", providers: [.apt(["libcapstone-dev"])]),
        // A small Swift wrapper over capstone: x86-64 bytes to (address, bytes, mnemonic, operands).
        .target(name: "X86Disassembly", dependencies: ["CCapstone"]),

        // Sessions: load a program, pick an engine, run, compare. Users import it through BPFSim.
        .target(
            name: "BPFSession",
            dependencies: ["BPFCore", "BPFRuntime", "BPFInterpreter", "BPFJIT", "BPFLoader", "BPFKernel", "BPFVerifier"]),

        // libelf, reached only through BPFLoader; no Elf* leaves that target.
        .systemLibrary(name: "CLibELF", pkgConfig: "libelf", providers: [.apt(["libelf-dev"])]),

        // A static verifier: predicts the kernel verifier's verdict and explains refusals.
        .target(name: "BPFVerifier", dependencies: ["BPFCore", "BPFRuntime"]),

        // Clang-compiled BPF ELF objects to programs and map specs: BTF and legacy maps,
        // global data, relocations, subprograms, BTF line info.
        .target(name: "BPFLoader", dependencies: ["BPFCore", "BPFRuntime", "CLibELF"]),

        // Random well-formed programs run on both engines (tests and `bpfsim fuzz-jit`).
        .target(name: "BPFFuzz", dependencies: ["BPFSession"]),

        // libbpf, reached only through BPFKernel; no libbpf type leaves that target.
        .systemLibrary(name: "CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),

        // The running kernel as one more engine: loads an object with libbpf, runs it with
        // BPF_PROG_TEST_RUN, reads every map back; says "unavailable" in one sentence
        // where bpf(2) is refused. Nothing else needs it to work.
        .target(name: "BPFKernel", dependencies: ["BPFCore", "BPFRuntime", "BPFLoader", "CLibBPF"]),

        // libpcap, reached only through BPFHarness; no pcap_t leaves that target.
        .systemLibrary(name: "CLibPCAP", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),

        // The test harness. For now the capture layer: pcap and pcapng in through libpcap,
        // presented as Ethernet; pcap out; synthesized traffic. Later replay, specs and reports.
        .target(
            name: "BPFHarness",
            dependencies: ["BPFSession", "CLibPCAP", .product(name: "Yams", package: "Yams")]),

        // The facade users import: `import BPFSim` brings sessions, engines, maps, the verifier
        // and the harness (captures, replay, traces, specs) in one name.
        .target(name: "BPFSim", dependencies: ["BPFSession", "BPFHarness"]),

        // `bpfsim bench`: the ../shared/bench programs on every engine, native code and the kernel.
        .target(
            name: "BPFBench",
            dependencies: ["BPFCore", "BPFRuntime", "BPFInterpreter", "BPFJIT", "BPFLoader", "BPFSession", "BPFKernel"]),

        // The subcommands, as a library so tests can call them.
        .target(
            name: "BPFSimCommands",
            dependencies: [
                "BPFSim",
                "BPFLoader",
                "BPFFuzz",
                "BPFBench",
                "X86Disassembly",
                "BPFKernel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "bpfsim", dependencies: ["BPFSimCommands"]),

        // Locations of the repository's and ../shared's test inputs, for every test target.
        .target(name: "BPFTestSupport", path: "Tests/BPFTestSupport"),
        .testTarget(name: "BPFCoreTests", dependencies: ["BPFCore", "BPFTestSupport"]),
        .testTarget(name: "BPFInterpreterTests", dependencies: ["BPFSim", "BPFTestSupport"]),
        .testTarget(name: "BPFJITTests", dependencies: ["BPFJIT", "BPFSim", "BPFFuzz", "X86Disassembly", "BPFTestSupport"]),
        .testTarget(name: "BPFSimCommandsTests", dependencies: ["BPFSimCommands", "BPFKernel", "BPFTestSupport"]),
        .testTarget(name: "BPFVerifierTests", dependencies: ["BPFSim", "BPFVerifier", "BPFTestSupport"]),
        .testTarget(
            name: "BPFKernelTests", dependencies: ["BPFSim", "BPFKernel", "BPFTestSupport"],
            exclude: ["Programs"]),
        .testTarget(name: "BPFContextTests", dependencies: ["BPFSim", "BPFTestSupport"]),
        .testTarget(name: "BPFLoaderTests", dependencies: ["BPFLoader", "BPFCore", "BPFRuntime", "BPFTestSupport"]),
        // Reads a capture with CaptureReader in its own process and reports its peak memory,
        // for BPFHarnessTests' flat-memory test (a test process runs other tests beside it).
        .executableTarget(name: "CaptureMemoryProbe", dependencies: ["BPFHarness"], path: "Tests/CaptureMemoryProbe"),
        // Replays a capture with PacketReplay in its own process and reports its peak memory,
        // for BPFHarnessTests' flat-memory replay test.
        .executableTarget(name: "ReplayMemoryProbe", dependencies: ["BPFHarness"], path: "Tests/ReplayMemoryProbe"),
        .testTarget(
            name: "BPFHarnessTests",
            dependencies: ["BPFHarness", "BPFTestSupport", "CaptureMemoryProbe", "ReplayMemoryProbe"],
            exclude: ["specs", "TracePrograms", "TraceInputs"]),
        // The Swift library API exactly as docs/library.md shows it, through the product alone.
        .testTarget(
            name: "BPFSimAPITests", dependencies: [.target(name: "BPFSim")],
            exclude: ["counter.bpf.c", "counter.spec.yaml"]),
    ],
    swiftLanguageModes: [.v6]
)
