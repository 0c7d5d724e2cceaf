import CLibPCAP

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// The only file that talks to libpcap. A `pcap_t` or `pcap_dumper_t` lives inside one of
// the two handles below and never leaves this file; the reader and the writer see Swift
// values and byte buffers. Unsafe code here: libpcap's packet pointer, which is valid only
// until the next call into the same handle (the reader copies from it at once).

/// An open capture being read, one record at a time.
final class PCAPReadHandle {
    private let pcap: OpaquePointer

    /// One step of `pcap_next_ex`.
    enum Step {
        /// A record; `data` is valid until the next call to `next()`. `seconds` and
        /// `subsecond` are `pcap_pkthdr.ts` as libpcap filled it, the sub-second part in
        /// nanoseconds (the handle asks for nanosecond precision).
        case packet(data: UnsafeRawBufferPointer, originalLength: Int, seconds: Int64, subsecond: Int64)
        /// The end of the file.
        case end
        /// libpcap's error message.
        case failure(String)
    }

    private init(_ pcap: OpaquePointer) { self.pcap = pcap }

    deinit { pcap_close(pcap) }

    /// `pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO)`: libpcap
    /// then scales every timestamp (microsecond pcap, nanosecond pcap, each pcapng
    /// interface's resolution) to nanoseconds. Fails with libpcap's message.
    static func open(path: String) -> Result<PCAPReadHandle, PCAPFailure> {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let pcap = pcap_open_offline_with_tstamp_precision(
            path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        guard let pcap else { return .failure(PCAPFailure(message: Self.string(errorBuffer))) }
        return .success(PCAPReadHandle(pcap))
    }

    /// `pcap_datalink`: the DLT_ value, FCS bits already masked off.
    var dlt: Int { Int(pcap_datalink(pcap)) }
    /// `pcap_snapshot`, after libpcap's adjustment (0 or too large becomes 262,144).
    var snapshotLength: Int { Int(pcap_snapshot(pcap)) }
    /// `pcap_is_swapped`: the file's byte order is not this host's.
    var isSwapped: Bool { pcap_is_swapped(pcap) == 1 }

    func next() -> Step {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let status = pcap_next_ex(pcap, &header, &data)
        switch status {
        case 1:
            guard let header else { return .failure("libpcap returned a record without a header") }
            let caplen = Int(header.pointee.caplen)
            let bytes = UnsafeRawBufferPointer(start: caplen == 0 ? nil : data, count: data == nil ? 0 : caplen)
            return .packet(
                data: bytes, originalLength: Int(header.pointee.len),
                seconds: Int64(header.pointee.ts.tv_sec), subsecond: Int64(header.pointee.ts.tv_usec))
        case PCAP_ERROR_BREAK:  // -2: no more records in a savefile
            return .end
        default:  // PCAP_ERROR (-1); 0 (timeout) cannot happen for a file
            return .failure(String(cString: pcap_geterr(pcap)))
        }
    }

    /// libpcap's name and description of a DLT_ value.
    static func linkType(dlt: Int) -> LinkType {
        let value: Int
        switch dlt {
        case 12, 14: value = 101  // DLT_RAW is LINKTYPE_RAW in files
        case 11, 13: value = 100  // DLT_ATM_RFC1483 is LINKTYPE_ATM_RFC1483
        default: value = dlt
        }
        let name = pcap_datalink_val_to_name(Int32(dlt)).map { String(cString: $0) } ?? "DLT_\(dlt)"
        let summary =
            pcap_datalink_val_to_description(Int32(dlt)).map { String(cString: $0) } ?? "unknown to libpcap"
        return LinkType(value: value, dlt: dlt, name: name, summary: summary)
    }

    /// The first bytes of a file (up to `count`), or the errno text when it cannot be read.
    static func leadingBytes(path: String, count: Int) -> Result<[UInt8], PCAPFailure> {
        guard let file = fopen(path, "rb") else { return .failure(PCAPFailure(message: errnoText())) }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = fread(&bytes, 1, count, file)
        if read < count && ferror(file) != 0 { return .failure(PCAPFailure(message: errnoText())) }
        return .success(Array(bytes.prefix(read)))
    }

    static func string(_ buffer: [CChar]) -> String {
        buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// A libpcap error message, as a value.
struct PCAPFailure: Error {
    let message: String
}

func errnoText() -> String { String(cString: strerror(errno)) }

/// A pcap file being written through `pcap_dump`.
final class PCAPDumpHandle {
    private let pcap: OpaquePointer
    private var dumper: OpaquePointer?

    /// `pcap_open_dead_with_tstamp_precision(DLT_EN10MB, snapshotLength, precision)` and
    /// `pcap_dump_open(path)`: a pcap file (magic 0xa1b2c3d4, or 0xa1b23c4d for
    /// nanoseconds) in this host's byte order, link type Ethernet.
    init(path: String, snapshotLength: Int, nanosecond: Bool) throws(PCAPFailure) {
        let precision = nanosecond ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO
        guard let pcap = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, Int32(snapshotLength), UInt32(precision))
        else { throw PCAPFailure(message: "pcap_open_dead failed") }
        // Both handles are made before either is stored: once every stored property is set,
        // a throwing init runs deinit, which would close `pcap` a second time.
        guard let dumper = pcap_dump_open(pcap, path) else {
            let message = String(cString: pcap_geterr(pcap))
            pcap_close(pcap)
            throw PCAPFailure(message: message)
        }
        self.pcap = pcap
        self.dumper = dumper
    }

    deinit {
        close()
        pcap_close(pcap)
    }

    /// Writes one record; `subsecond` is in the handle's precision. Returns false when the
    /// stream has seen a write error.
    func dump(_ bytes: UnsafeRawBufferPointer, originalLength: Int, seconds: UInt32, subsecond: UInt32) -> Bool {
        guard let dumper else { return false }
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(seconds)
        header.ts.tv_usec = Int(subsecond)
        header.caplen = UInt32(truncatingIfNeeded: bytes.count)
        header.len = UInt32(truncatingIfNeeded: originalLength)
        // An empty record has no base address; libpcap writes no bytes for it anyway.
        let empty: UInt8 = 0
        withUnsafePointer(to: empty) { fallback in
            let start = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? fallback
            bpfsim_pcap_dump(dumper, &header, start)
        }
        return bpfsim_pcap_dump_failed(dumper) == 0
    }

    /// `pcap_dump_flush`; false on a write error.
    func flush() -> Bool {
        guard let dumper else { return false }
        return pcap_dump_flush(dumper) == 0 && bpfsim_pcap_dump_failed(dumper) == 0
    }

    /// `pcap_dump_close`; later dumps fail.
    func close() {
        if let dumper { pcap_dump_close(dumper) }
        dumper = nil
    }
}
