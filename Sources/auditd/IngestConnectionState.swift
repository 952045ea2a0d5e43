/// One writer connection's state (format-spec.md §9.1), apart from the channel it drives: the
/// handler tells it what happened and does what it answers, so each rule is here once and is
/// tested without a socket. Open until closed; entries in flight; bad frames of the current
/// read burst; the reasons reading is paused (`ReadGate`).
struct IngestConnectionState {
    /// Whether the connection still serves.
    enum Phase: Equatable {
        /// Reading, answering.
        case open
        /// A last frame was sent and the channel is closing: nothing more is read or sent.
        case closing
    }

    /// What to do with a bad frame.
    enum Refusal: Equatable {
        /// Answer it with its ERROR; the connection stays usable.
        case answer
        /// Too many in one burst: close with a last ERROR instead.
        case close
    }

    private(set) var phase = Phase.open
    /// Entries accepted and not yet acknowledged.
    private(set) var inflight = 0
    private var errorsThisBurst = 0
    private var gate = ReadGate()
    /// Most entries in flight before reading pauses (resumes at half).
    let maxInflight: Int
    /// Bad frames one read burst may bring before the connection is closed: a writer that
    /// sends thousands of bad frames is broken, and its replies would pile up.
    let maxErrorsPerBurst: Int

    init(maxInflight: Int, maxErrorsPerBurst: Int = 64) {
        self.maxInflight = maxInflight
        self.maxErrorsPerBurst = maxErrorsPerBurst
    }

    /// Whether frames are still read and answered.
    var isOpen: Bool { phase == .open }

    /// A bad frame arrived.
    mutating func refused() -> Refusal {
        errorsThisBurst += 1
        return errorsThisBurst > maxErrorsPerBurst ? .close : .answer
    }

    /// The read burst ended: its bad frames are forgiven.
    mutating func readComplete() { errorsThisBurst = 0 }

    /// Closing: true the first time (send the last frame and close), false after.
    mutating func close() -> Bool {
        guard phase == .open else { return false }
        phase = .closing
        return true
    }

    /// `n` entries went to the ledger; `overTotal` when all connections together hold too many.
    mutating func submitted(_ n: Int, overTotal: Bool) -> [ReadGate.Action] {
        inflight += n
        var actions: [ReadGate.Action] = []
        if inflight >= maxInflight { actions.append(gate.hold(.inflight)) }
        if overTotal { actions.append(gate.hold(.inflightTotal)) }
        return actions
    }

    /// `n` entries were answered (acked or refused by the ledger).
    mutating func answered(_ n: Int) -> ReadGate.Action {
        inflight -= n
        return inflight < maxInflight / 2 ? gate.release(.inflight) : .none
    }

    /// All connections together fell below half the limit.
    mutating func totalBelowHalf() -> ReadGate.Action { gate.release(.inflightTotal) }

    /// The peer reads its replies again (`writable`), or stopped.
    mutating func writability(_ writable: Bool) -> ReadGate.Action {
        writable ? gate.release(.unwritable) : gate.hold(.unwritable)
    }

    /// The read timeout fired: close an idle peer, or one stalled in the middle of a frame
    /// (`partialFrame`); a peer waiting for acks of entries in flight is neither.
    func shouldCloseIdle(partialFrame: Bool) -> Bool { inflight == 0 || partialFrame }
}
