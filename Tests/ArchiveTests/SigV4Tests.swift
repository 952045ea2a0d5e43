import AuditBase
import Foundation
import Testing

@testable import Archive

/// SigV4 against the published AWS Signature Version 4 test suite (the `.req` inputs and the
/// `.creq`, `.sts` and `.authz` answers of its cases; credentials AKIDEXAMPLE, us-east-1,
/// service "service", 2015-08-30T12:36:00Z).
@Suite struct SigV4Tests {
    let creds = SigV4.Credentials(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    let base = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")]

    func sign(
        _ method: String, _ path: String, _ query: [(String, String)] = [], extra: [(String, String)] = [],
        body: String = ""
    ) throws -> SigV4.Signed {
        let hash = SHA256Hex.of(body)
        return try SigV4.sign(
            method: method, path: path, query: query, headers: extra + base, payloadHash: hash,
            credentials: creds, region: "us-east-1", service: "service")
    }

    @Test func getVanillaQueryOrderKey() throws {
        // GET /?Param1=value2&Param1=Value1
        let s = try sign("GET", "/", [("Param1", "value2"), ("Param1", "Value1")])
        #expect(
            s.canonicalRequest
                == "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        #expect(
            s.stringToSign
                == "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89"
        )
        #expect(
            s.authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"
        )
    }

    @Test func theSuitesAuthorizationHeaders() throws {
        // GET /?Param2=value2&Param1=value1
        #expect(
            try sign("GET", "/", [("Param2", "value2"), ("Param1", "value1")]).authorization.hasSuffix(
                "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"))
        // POST /
        #expect(
            try sign("POST", "/").authorization.hasSuffix(
                "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"))
        // GET with every unreserved character in the path.
        #expect(
            try sign("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz").authorization
                .hasSuffix("Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"))
        // POST with a form body and a content type.
        let form = try sign(
            "POST", "/", extra: [("Content-Type", "application/x-www-form-urlencoded")], body: "Param1=value1")
        #expect(
            form.authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        )
    }

    @Test func hmacMatchesRFC4231() {
        // RFC 4231 test case 2.
        let mac = SigV4.hmac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
        #expect(
            mac.map { String(format: "%02x", $0) }.joined()
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}

enum SHA256Hex {
    static func of(_ s: String) -> String { SHA256.hash(Array(s.utf8)).hex }
}

/// Issue 18 item 16: an Object Lock date never ends before the retention it stands for.
@Suite struct LockDateTests {
    @Test(arguments: [
        (10.0, "1970-01-01T00:00:10Z"), (10.001, "1970-01-01T00:00:11Z"), (10.999, "1970-01-01T00:00:11Z"),
    ])
    func retainUntilIsRoundedUpToTheSecond(_ t: Double, _ want: String) {
        #expect(S3Backend.isoDate(Date(timeIntervalSince1970: t)) == want)
    }

    @Test(arguments: [
        (0.0, "19700101T000000Z"), (1_440_938_160.9, "20150830T123600Z"), (1_796_392_988.5, "20261204T140308Z"),
        (951_782_400.0, "20000229T000000Z"),
    ])
    func amzDateIsTheUTCSecond(_ t: Double, _ want: String) {
        #expect(SigV4.amzDate(Date(timeIntervalSince1970: t)) == want)
    }

    /// A lock date past year 9999 (tail_lock accepts up to Int.max seconds) is the last second
    /// the format can write, not a trap converting it to Int64.
    @Test func datesBeyondTheFormatAreClampedNotTrapped() {
        #expect(S3Backend.isoDate(Date().addingTimeInterval(Double(Int.max))) == "9999-12-31T23:59:59Z")
        #expect(S3Backend.isoDate(Date(timeIntervalSince1970: -1e19)) == "0000-01-01T00:00:00Z")
        #expect(SigV4.amzDate(Date(timeIntervalSince1970: 1e300)) == "99991231T235959Z")
    }
}
