@_exported import BPFLoader

extension ProgramDefinition {
    /// A loaded object's program, with its C source lines.
    public init(_ program: ObjectProgram) {
        var lines: [Int: String] = [:]
        if !program.lineInfo.isEmpty {
            for index in program.instructions.indices {
                if let line = program.line(at: index) { lines[index] = line.location }
            }
        }
        self.init(
            name: program.name, section: program.section, type: program.type, attachTarget: program.attachTarget,
            instructions: program.instructions,
            sourceLines: lines)
    }
}

extension Session {
    /// Every program and map of an object, in one machine: prog arrays and map-in-map
    /// values name programs and maps by their index in the object.
    public convenience init(object: BPFObject, configuration: RunConfiguration = .init()) throws(SessionError) {
        try self.init(
            programs: object.programs.map(ProgramDefinition.init), maps: object.maps, configuration: configuration)
        self.object = object
    }
}
