import BPFFuzz
import BPFSim
import Testing

/// Random programs (BPFFuzz) on both engines: r0, memory, faults, printk and
/// instruction counts must agree. `scripts/fuzz-jit.sh` runs the same check for as long
/// as you like; every divergence it finds becomes a case in RegressionTests.
struct DifferentialTests {
    @Test("generated programs agree on both engines", arguments: 0..<4)
    func fixedSeeds(slice: Int) {
        for seed in UInt64(slice * 150)..<UInt64((slice + 1) * 150) {
            if let finding = DifferentialFuzzer.check(seed: seed) {
                Issue.record("\(finding)")
                return
            }
        }
    }
}
