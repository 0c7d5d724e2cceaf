/// A model of the kernel's BPF LRU (kernel/bpf/bpf_lru_list.c, Linux 6.18): which
/// preallocated element an LRU hash map gets for a new key, and which elements it
/// evicts to make room. bpfsim's own code, following the kernel's algorithm step by step
/// so that the same operations evict the same keys.
///
/// Nodes are the map's elements, numbered as the map's value slots (node i is the
/// kernel's i-th preallocated element). Each node is on one list at a time:
///
/// * with a common LRU, one LRU list (active, inactive and free lists) shared by all
///   CPUs, plus per CPU a pending list (elements this CPU took since it last went to the
///   common list) and a local free list (elements taken from the common list in a batch
///   of `targetFree`, a LIFO like the kernel's llist);
/// * with `BPF_F_NO_COMMON_LRU`, one LRU list per CPU, each with `nodes / cpus` elements;
///   a CPU only ever uses its own.
///
/// Reference bits are set by lookups from programs and by updates of existing keys; they
/// are cleared whenever a node moves. Rotation moves unreferenced nodes from the tail of
/// the active list to the inactive list (when the inactive list is the shorter) and
/// referenced inactive nodes back to the active list; shrinking evicts unreferenced nodes
/// from the tail of the inactive list, at most `scans` looked at, or else one node
/// whatever its bit. The kernel's lock-failure paths (rqspinlock timeouts, the deferred
/// `pending_free`) never happen here: one emulated CPU runs at a time.
final class BPFLRUList {
    enum ListType: UInt8 {
        case active, inactive, free, localFree, localPending

        var isLocal: Bool { self == .localFree || self == .localPending }
    }

    /// `LOCAL_FREE_TARGET` and `LOCAL_NR_SCANS`: the most nodes a CPU takes from the
    /// common list at once, and the most nodes a rotation or shrink looks at.
    static let localFreeTarget = 128
    static let localScans = localFreeTarget
    /// `PERCPU_FREE_TARGET` and `PERCPU_NR_SCANS`, for `BPF_F_NO_COMMON_LRU`.
    static let perCPUFreeTarget = 4
    static let perCPUScans = perCPUFreeTarget

    /// One LRU list (`struct bpf_lru_list`): the heads of its three lists, the counts of
    /// the active and inactive ones, and where the next inactive rotation starts (a node
    /// of the inactive list or its head).
    private struct List {
        var active: Int
        var inactive: Int
        var free: Int
        var activeCount = 0
        var inactiveCount = 0
        var nextInactiveRotation: Int

        func head(_ type: ListType) -> Int {
            switch type {
            case .active: active
            case .inactive: inactive
            default: free
            }
        }
    }

    /// A CPU's local lists with a common LRU (`struct bpf_lru_locallist`).
    private struct Local {
        /// Head of the pending list.
        var pending: Int
        /// Top of the free list (a stack linked through `next`), or -1 when empty.
        var freeTop = -1
        /// The CPU to steal from next.
        var nextSteal: Int
    }

    let nodeCount: Int
    let cpuCount: Int
    /// `BPF_F_NO_COMMON_LRU`: a list per CPU instead of a common one.
    let perCPU: Bool
    /// `lru->nr_scans`.
    let scans: Int
    /// `lru->target_free`: how many nodes a CPU moves to its local free list at once,
    /// `clamp(nodes / cpus / 2, 1, LOCAL_FREE_TARGET)` (common LRU only).
    let targetFree: Int

    /// Removes the element of a node from the hash table, if it is in it
    /// (`htab_lru_map_delete_node`); false when the node holds no element.
    var deleteFromTable: (Int) -> Bool = { _ in false }

    // Circular doubly-linked lists over indices: 0..<nodeCount are nodes, the rest heads.
    // A node on a local free list uses `next` as the stack link.
    private var prev: [Int]
    private var next: [Int]
    private var types: [ListType]
    private var referenced: [Bool]
    /// `node->cpu`: the CPU whose pending list (common) or LRU list (per-CPU) holds it.
    private var owner: [Int]
    private var lists: [List] = []
    private var locals: [Local] = []
    /// Head of the temporary list `bpf_lru_list_pop_free_to_local` gathers nodes on.
    private var gathered = -1

    init(nodes: Int, cpus: Int, perCPU: Bool) {
        nodeCount = nodes
        cpuCount = max(cpus, 1)
        self.perCPU = perCPU
        scans = perCPU ? Self.perCPUScans : Self.localScans
        targetFree = min(max(nodes / cpuCount / 2, 1), Self.localFreeTarget)
        let heads = perCPU ? 3 * cpuCount : 3 + cpuCount + 1
        prev = Array(0..<(nodes + heads))
        next = prev
        types = Array(repeating: .free, count: nodes)
        referenced = Array(repeating: false, count: nodes)
        owner = Array(repeating: 0, count: nodes)

        var nextHead = nodes
        func newHead() -> Int {
            defer { nextHead += 1 }
            return nextHead
        }
        func newList() -> List {
            let active = newHead()
            let inactive = newHead()
            return List(active: active, inactive: inactive, free: newHead(), nextInactiveRotation: inactive)
        }
        if perCPU {
            lists = (0..<cpuCount).map { _ in newList() }
            populatePerCPU()
        } else {
            lists = [newList()]
            locals = (0..<cpuCount).map { cpu in Local(pending: newHead(), nextSteal: cpu) }
            gathered = newHead()
            // bpf_common_lru_populate: every node on the free list, the last at its head.
            for node in 0..<nodes { listAdd(node, lists[0].free) }
        }
    }

    /// bpf_percpu_lru_populate: the first `nodes / cpus` nodes to CPU 0's free list, the
    /// next to CPU 1's, and so on.
    private func populatePerCPU() {
        let perList = nodeCount / cpuCount
        guard perList > 0 else { return }
        var node = 0
        cpus: for cpu in 0..<cpuCount {
            repeat {
                owner[node] = cpu
                listAdd(node, lists[cpu].free)
                node += 1
                if node == nodeCount { break cpus }
            } while node % perList != 0
        }
    }

    // MARK: What the hash table calls

    /// `bpf_lru_node_set_ref`.
    func setReference(_ node: Int) { referenced[node] = true }

    /// `bpf_lru_pop_free`: a node for a new element on `cpu`, evicting elements when
    /// needed; nil when none can be had (the update fails with -ENOMEM).
    func popFree(cpu: Int) -> Int? {
        let cpu = cpu % cpuCount
        return perCPU ? perCPUPopFree(cpu) : commonPopFree(cpu)
    }

    /// `bpf_lru_push_free`: gives back the node of a deleted or replaced element, or one
    /// an update took and did not use.
    func pushFree(_ node: Int) {
        if perCPU {
            move(owner[node], node, to: .free)
            return
        }
        let type = types[node]
        guard type != .free, type != .localFree else { return }
        if type == .localPending {
            types[node] = .localFree
            referenced[node] = false
            listDel(node)
            push(node, onFreeListOf: owner[node])
            return
        }
        move(0, node, to: .free)
    }

    // MARK: List primitives (include/linux/list.h)

    private func listAdd(_ node: Int, _ head: Int) {
        let first = next[head]
        next[node] = first
        prev[node] = head
        prev[first] = node
        next[head] = node
    }

    private func listDel(_ node: Int) {
        next[prev[node]] = next[node]
        prev[next[node]] = prev[node]
    }

    private func listMove(_ node: Int, _ head: Int) {
        listDel(node)
        listAdd(node, head)
    }

    private func isEmpty(_ head: Int) -> Bool { next[head] == head }

    private func push(_ node: Int, onFreeListOf cpu: Int) {
        next[node] = locals[cpu].freeTop
        locals[cpu].freeTop = node
    }

    /// `__local_list_pop_free`.
    private func popLocalFree(_ cpu: Int) -> Int? {
        let top = locals[cpu].freeTop
        guard top >= 0 else { return nil }
        locals[cpu].freeTop = next[top]
        return top
    }

    // MARK: Moving nodes between lists

    private func countUp(_ list: Int, _ type: ListType) {
        if type == .active { lists[list].activeCount += 1 }
        if type == .inactive { lists[list].inactiveCount += 1 }
    }

    private func countDown(_ list: Int, _ type: ListType) {
        if type == .active { lists[list].activeCount -= 1 }
        if type == .inactive { lists[list].inactiveCount -= 1 }
    }

    /// `__bpf_lru_node_move_to_free`: off the LRU list onto `freeHead` (a free list),
    /// keeping the reference bit.
    private func moveToFree(_ list: Int, _ node: Int, onto freeHead: Int, as type: ListType) {
        guard !types[node].isLocal else { return }
        if node == lists[list].nextInactiveRotation { lists[list].nextInactiveRotation = prev[node] }
        countDown(list, types[node])
        types[node] = type
        listMove(node, freeHead)
    }

    /// `__bpf_lru_node_move_in`: from a local list to the head of an LRU list.
    private func moveIn(_ list: Int, _ node: Int, to type: ListType) {
        guard types[node].isLocal, !type.isLocal else { return }
        countUp(list, type)
        types[node] = type
        referenced[node] = false
        listMove(node, lists[list].head(type))
    }

    /// `__bpf_lru_node_move`: to the head of an LRU list (possibly its own), clearing the
    /// reference bit.
    private func move(_ list: Int, _ node: Int, to type: ListType) {
        guard !types[node].isLocal, !type.isLocal else { return }
        if types[node] != type {
            countDown(list, types[node])
            countUp(list, type)
            types[node] = type
        }
        referenced[node] = false
        if node == lists[list].nextInactiveRotation { lists[list].nextInactiveRotation = prev[node] }
        listMove(node, lists[list].head(type))
    }

    // MARK: Rotation and shrinking

    /// `__bpf_lru_list_rotate_active`: from the tail, referenced nodes go back to the
    /// head of the active list, the others to the inactive list.
    private func rotateActive(_ list: Int) {
        let head = lists[list].active
        let first = next[head]
        var node = prev[head]
        var scanned = 0
        while node != head {
            let before = prev[node]
            move(list, node, to: referenced[node] ? .active : .inactive)
            scanned += 1
            if scanned == scans || node == first { break }
            node = before
        }
    }

    /// `__bpf_lru_list_rotate_inactive`: from where the last rotation stopped, towards
    /// the head and round, referenced nodes go to the active list; the others stay.
    private func rotateInactive(_ list: Int) {
        let head = lists[list].inactive
        if isEmpty(head) { return }
        var last = next[lists[list].nextInactiveRotation]
        if last == head { last = next[last] }
        var current = lists[list].nextInactiveRotation
        var following = head
        var scanned = 0
        while scanned < scans {
            if current == head {
                if isEmpty(head) { break }  // cannot happen: `last` is reached first
                current = prev[current]
                continue
            }
            following = prev[current]
            if referenced[current] { move(list, current, to: .active) }
            if current == last { break }
            current = following
            scanned += 1
        }
        lists[list].nextInactiveRotation = following
    }

    /// `__bpf_lru_list_rotate`.
    private func rotate(_ list: Int) {
        if lists[list].inactiveCount < lists[list].activeCount { rotateActive(list) }
        rotateInactive(list)
    }

    /// `__bpf_lru_list_shrink_inactive`: from the tail of the inactive list, referenced
    /// nodes go to the active list and the others are evicted onto `freeHead`, until
    /// `target` are evicted or `scans` nodes were looked at.
    private func shrinkInactive(_ list: Int, target: Int, onto freeHead: Int, as type: ListType) -> Int {
        let head = lists[list].inactive
        var node = prev[head]
        var shrunk = 0
        var scanned = 0
        while node != head {
            let before = prev[node]
            if referenced[node] {
                move(list, node, to: .active)
            } else if deleteFromTable(node) {
                moveToFree(list, node, onto: freeHead, as: type)
                shrunk += 1
                if shrunk == target { break }
            }
            scanned += 1
            if scanned == scans { break }
            node = before
        }
        return shrunk
    }

    /// `__bpf_lru_list_shrink`: when the inactive list gives nothing, evicts the tail of
    /// the inactive list (or of the active list when the inactive one is empty) whatever
    /// its reference bit.
    @discardableResult
    private func shrink(_ list: Int, target: Int, onto freeHead: Int, as type: ListType) -> Int {
        let shrunk = shrinkInactive(list, target: target, onto: freeHead, as: type)
        if shrunk > 0 { return shrunk }
        let forced = isEmpty(lists[list].inactive) ? lists[list].active : lists[list].inactive
        var node = prev[forced]
        while node != forced {
            let before = prev[node]
            if deleteFromTable(node) {
                moveToFree(list, node, onto: freeHead, as: type)
                return 1
            }
            node = before
        }
        return 0
    }

    // MARK: Common LRU

    /// `__local_list_flush`: the CPU's pending nodes, oldest first, onto the common
    /// list: referenced ones to the active list, the others to the inactive list.
    private func flushPending(_ cpu: Int) {
        let head = locals[cpu].pending
        var node = prev[head]
        while node != head {
            let before = prev[node]
            moveIn(0, node, to: referenced[node] ? .active : .inactive)
            node = before
        }
    }

    /// `bpf_lru_list_pop_free_to_local`: flush, rotate, then take up to `targetFree`
    /// nodes from the common free list, evicting when it has too few.
    private func popFreeToLocal(_ cpu: Int) {
        flushPending(cpu)
        rotate(0)
        let free = lists[0].free
        var taken = 0
        var node = next[free]
        while node != free {
            let after = next[node]
            moveToFree(0, node, onto: gathered, as: .localFree)
            taken += 1
            if taken == targetFree { break }
            node = after
        }
        if taken < targetFree { shrink(0, target: targetFree - taken, onto: gathered, as: .localFree) }
        // Onto the CPU's free stack in list order, so the first gathered comes off first.
        node = next[gathered]
        while node != gathered {
            let after = next[node]
            listDel(node)
            push(node, onFreeListOf: cpu)
            node = after
        }
    }

    /// `__local_list_add_pending`.
    private func addPending(_ cpu: Int, _ node: Int) {
        owner[node] = cpu
        types[node] = .localPending
        referenced[node] = false
        listAdd(node, locals[cpu].pending)
    }

    /// `__local_list_pop_pending`: the oldest pending node without its reference bit, or
    /// else the oldest, evicting its element.
    private func popPending(_ cpu: Int) -> Int? {
        let head = locals[cpu].pending
        for force in [false, true] {
            var node = prev[head]
            while node != head {
                if (!referenced[node] || force) && deleteFromTable(node) {
                    listDel(node)
                    return node
                }
                node = prev[node]
            }
        }
        return nil
    }

    /// `bpf_common_lru_pop_free`: the CPU's local free list, refilled from the common
    /// list; failing that, a free or pending node stolen from a CPU's local lists, round
    /// robin from `nextSteal`.
    private func commonPopFree(_ cpu: Int) -> Int? {
        var node = popLocalFree(cpu)
        if node == nil {
            popFreeToLocal(cpu)
            node = popLocalFree(cpu)
        }
        if let node {
            addPending(cpu, node)
            return node
        }
        let first = locals[cpu].nextSteal
        var steal = first
        repeat {
            node = popLocalFree(steal) ?? popPending(steal)
            steal = (steal + 1) % cpuCount
        } while node == nil && steal != first
        locals[cpu].nextSteal = steal
        if let node { addPending(cpu, node) }
        return node
    }

    // MARK: Per-CPU LRU

    /// `bpf_percpu_lru_pop_free`: rotate the CPU's list; when its free list is empty,
    /// evict up to `PERCPU_FREE_TARGET`; the node goes to the head of the inactive list.
    private func perCPUPopFree(_ cpu: Int) -> Int? {
        rotate(cpu)
        let free = lists[cpu].free
        if isEmpty(free) { shrink(cpu, target: Self.perCPUFreeTarget, onto: free, as: .free) }
        guard !isEmpty(free) else { return nil }
        let node = next[free]
        referenced[node] = false
        move(cpu, node, to: .inactive)
        return node
    }
}
