import BPFCore
import BPFRuntime

/// What a helper takes and returns, as its kernel `struct bpf_func_proto` says.
struct HelperPrototype: Sendable {
    enum Argument: Sendable, Equatable {
        /// `ARG_ANYTHING`.
        case anything
        /// `ARG_CONST_MAP_PTR`.
        case mapPointer
        /// `ARG_PTR_TO_MAP_KEY`.
        case mapKey
        /// `ARG_PTR_TO_MAP_VALUE` (`uninit` with `MEM_UNINIT | MEM_WRITE`: the helper writes it).
        case mapValue(uninit: Bool)
        /// `ARG_PTR_TO_MEM`, sized by the next argument (`write`: the helper writes it,
        /// `nullable`: NULL allowed).
        case memory(write: Bool, nullable: Bool)
        /// `ARG_CONST_SIZE` / `ARG_CONST_SIZE_OR_ZERO`.
        case size(zeroAllowed: Bool)
        /// `ARG_PTR_TO_CTX`.
        case context
        /// `ARG_PTR_TO_FUNC`: a callback.
        case function
        /// `ARG_PTR_TO_STACK_OR_NULL`.
        case stackOrNull
        /// `ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`.
        case ringbufRecord
        /// `ARG_PTR_TO_SPIN_LOCK`.
        case spinLock
        /// `ARG_CONST_ALLOC_SIZE_OR_ZERO`.
        case allocationSize
        /// `ARG_PTR_TO_LONG` (written by the helper).
        case long
        /// `ARG_PTR_TO_CONST_STR`.
        case constString
    }

    enum Return: Sendable, Equatable {
        case integer
        case void
        /// `RET_PTR_TO_MAP_VALUE_OR_NULL`.
        case mapValueOrNull
        /// `RET_PTR_TO_RINGBUF_MEM_OR_NULL`, acquiring a reference.
        case ringbufRecordOrNull
    }

    var arguments: [Argument]
    var returns: Return
    var gplOnly = false
    /// Helpers that move packet data (`bpf_helper_changes_pkt_data`).
    var changesPacket = false

    /// The prototypes bpfsim knows: the helpers of `StandardHelpers` and a few common ones.
    static func find(_ id: Int32) -> HelperPrototype? {
        let integer = HelperPrototype(arguments: [], returns: .integer)
        switch id {
        case 1, 195:
            return .init(arguments: id == 1 ? [.mapPointer, .mapKey] : [.mapPointer, .mapKey, .anything], returns: .mapValueOrNull)
        case 2: return .init(arguments: [.mapPointer, .mapKey, .mapValue(uninit: false), .anything], returns: .integer)
        case 3: return .init(arguments: [.mapPointer, .mapKey], returns: .integer)
        case 4, 45, 112, 113, 114, 115:
            return .init(arguments: [.memory(write: true, nullable: false), .size(zeroAllowed: true), .anything], returns: .integer, gplOnly: true)
        case 5, 7, 8, 14, 15, 42, 118, 125, 160, 208: return integer
        case 35: return integer  // bpf_get_current_task
        case 6:
            // bpf_trace_printk_proto declares only fmt and fmt_size: r3-r5 are not checked,
            // so a call with fewer than three arguments leaves them unread (kernel/trace/bpf_trace.c).
            return .init(arguments: [.memory(write: false, nullable: false), .size(zeroAllowed: false)], returns: .integer, gplOnly: true)
        case 12: return .init(arguments: [.context, .mapPointer, .anything], returns: .void)
        case 16: return .init(arguments: [.memory(write: true, nullable: false), .size(zeroAllowed: false)], returns: .integer)
        case 23: return .init(arguments: [.anything, .anything], returns: .integer)
        case 25: return .init(arguments: [.context, .mapPointer, .anything, .memory(write: false, nullable: false), .size(zeroAllowed: true)], returns: .integer, gplOnly: true)
        case 26: return .init(arguments: [.context, .anything, .memory(write: true, nullable: false), .size(zeroAllowed: false)], returns: .integer)
        case 9: return .init(arguments: [.context, .anything, .memory(write: false, nullable: false), .size(zeroAllowed: false), .anything], returns: .integer, changesPacket: true)
        case 28: return .init(arguments: [.memory(write: false, nullable: true), .size(zeroAllowed: true), .memory(write: false, nullable: true), .size(zeroAllowed: true), .anything], returns: .integer)
        case 44, 54, 65: return .init(arguments: [.context, .anything], returns: .integer, changesPacket: true)
        case 51: return .init(arguments: [.mapPointer, .anything, .anything], returns: .integer)
        case 87: return .init(arguments: [.mapPointer, .mapValue(uninit: false), .anything], returns: .integer)
        case 88, 89: return .init(arguments: [.mapPointer, .mapValue(uninit: true)], returns: .integer)
        case 93, 94: return .init(arguments: [.spinLock], returns: .void)
        case 105, 106: return .init(arguments: [.memory(write: false, nullable: false), .size(zeroAllowed: false), .anything, .long], returns: .integer)
        case 130: return .init(arguments: [.mapPointer, .memory(write: false, nullable: false), .size(zeroAllowed: true), .anything], returns: .integer)
        case 131: return .init(arguments: [.mapPointer, .allocationSize, .anything], returns: .ringbufRecordOrNull)
        case 132, 133: return .init(arguments: [.ringbufRecord, .anything], returns: .void)
        case 134: return .init(arguments: [.mapPointer, .anything], returns: .integer)
        case 164: return .init(arguments: [.mapPointer, .function, .stackOrNull, .anything], returns: .integer)
        case 165: return .init(arguments: [.memory(write: true, nullable: true), .size(zeroAllowed: true), .constString, .memory(write: false, nullable: true), .size(zeroAllowed: true)], returns: .integer)
        case 177: return .init(arguments: [.memory(write: false, nullable: false), .size(zeroAllowed: false), .memory(write: false, nullable: true), .size(zeroAllowed: true)], returns: .integer, gplOnly: true)
        case 181: return .init(arguments: [.anything, .function, .stackOrNull, .anything], returns: .integer)
        case 182: return .init(arguments: [.memory(write: false, nullable: false), .size(zeroAllowed: false), .constString], returns: .integer)
        default: return nil
        }
    }

    /// Whether a program type may call the helper (`get_func_proto`), for a privileged
    /// loader on Linux 6.18 (checked against the kernel for the helpers above).
    static func allowed(_ id: Int32, for type: ProgramType) -> Bool {
        let tracing: Set<ProgramType> = [.kprobe, .tracepoint, .rawTracepoint, .perfEvent, .rawTracepointWritable, .tracing]
        switch id {
        case 4, 45: return tracing.contains(type)
        case 23: return type == .xdp || type == .schedCls || type == .schedAct
        case 51: return type == .xdp
        case 28: return type == .xdp || type == .schedCls || type == .schedAct || type == .lwtXmit
        case 44, 54, 65: return type == .xdp
        case 160: return !tracing.contains(type)
        case 26: return [.socketFilter, .schedCls, .schedAct, .cgroupSkb, .skSkb, .lwtIn, .lwtOut, .lwtXmit].contains(type)
        case 9: return [.schedCls, .schedAct, .skSkb, .lwtXmit].contains(type)
        case 35: return tracing.contains(type)
        default: return true
        }
    }

    /// `check_map_func_compatibility`: whether the helper works on the map type.
    static func compatible(_ id: Int32, _ map: MapType) -> Bool {
        switch map {
        case .progArray: if id != 12 { return false }
        case .perfEventArray: if ![22, 25, 55, 68, 121].contains(id) { return false }
        case .ringbuf: if ![130, 131, 134, 198].contains(id) { return false }
        case .stackTrace: if id != 27 { return false }
        case .devmap, .devmapHash, .xskmap: if id != 51 && id != 1 { return false }
        case .cpumap: if id != 51 { return false }
        case .arrayOfMaps, .hashOfMaps: if id != 1 { return false }
        case .queue, .stack: if ![87, 88, 89].contains(id) { return false }
        case .bloomFilter: if ![87, 89].contains(id) { return false }
        default: break
        }
        switch id {
        case 12: return map == .progArray
        case 22, 25, 55, 68, 121: return map == .perfEventArray
        case 130, 131, 134, 198: return map == .ringbuf
        case 27: return map == .stackTrace
        case 51: return [.devmap, .devmapHash, .cpumap, .xskmap].contains(map)
        case 88: return map == .queue || map == .stack
        case 87, 89: return map == .queue || map == .stack || map == .bloomFilter
        case 195: return map == .percpuArray || map == .percpuHash || map == .lruPercpuHash
        default: return true
        }
    }
}
