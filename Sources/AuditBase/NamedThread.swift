import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A thread that names itself (`ps -L`, `top -H`, `/proc/PID/task/*/comm`: Linux keeps the
/// first 15 bytes) and takes nice value `nice` before it runs `body`. Foundation's `Thread`
/// drops a name given before `start()`, so every such thread showed its creator's name: a
/// stalled daemon's thread list could not tell which work was stuck.
public func namedThread(
    _ name: String, nice: Int32 = 0, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void
) -> Thread {
    let t = Thread {
        #if canImport(Glibc)
        _ = setName?(pthread_self(), String(decoding: name.utf8.prefix(15), as: UTF8.self))
        #endif
        if nice != 0 { ThreadPriority.setCurrent(nice: nice) }
        body()
    }
    if let stackSize { t.stackSize = stackSize }
    return t
}

#if canImport(Glibc)
/// glibc's pthread_setname_np, which the Glibc module leaves out (_GNU_SOURCE).
private let setName: (@convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32)? = {
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pthread_setname_np") else { return nil }
    return unsafeBitCast(sym, to: (@convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32).self)
}()
#endif
