#if canImport(Glibc)
import Glibc
#endif

/// Background work (sealing, verification) yields the CPU to writers: its thread runs at a
/// higher nice value. Linux applies nice per thread; elsewhere this does nothing.
public enum ThreadPriority {
    /// Sets the calling thread's nice value to `nice` (0 normal, 19 lowest).
    public static func setCurrent(nice: Int32) {
        #if canImport(Glibc)
        guard let gettid = gettid else { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(gettid()), nice)
        #endif
    }

    /// The calling thread's nice value (0 where threads have none of their own). A thread
    /// started with Foundation's `Thread` begins at the process's value, not its creator's:
    /// background work passes its own on to the threads it starts.
    public static func current() -> Int32 {
        #if canImport(Glibc)
        guard let gettid = gettid else { return 0 }
        errno = 0
        let n = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(gettid()))
        return errno == 0 ? n : 0
        #else
        return 0
        #endif
    }

    /// glibc's gettid(2) wrapper, which Swift does not import.
    static let gettid: (@convention(c) () -> Int32)? = {
        #if canImport(Glibc)
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gettid") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) () -> Int32).self)
        #else
        return nil
        #endif
    }()
}
