import Foundation
@_exported import TestSupport

/// Loads a JSON fixture shipped with the tests.
func fixture(_ name: String) throws -> [String: Any] {
    guard
        let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures")
            ?? Bundle.module.url(forResource: name, withExtension: "json")
    else { throw FixtureMissing(name: name) }
    let data = try Data(contentsOf: url)
    guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw FixtureMissing(name: name)
    }
    return obj
}

struct FixtureMissing: Error { var name: String }
