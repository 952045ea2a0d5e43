/// Which controls each category of entries evidences (format-spec.md §9.5): the controls the
/// log supports with evidence, never a certification of them.
public enum EvidenceControls {
    /// What the mapping says of itself, in the pack and the report.
    public static let statement =
        "These are controls that the entries in this pack can evidence (the log records the activity the control requires to be recorded or reviewed). The mapping is not a certification: an auditor tests the controls themselves."

    /// One framework's controls.
    public struct Control: Sendable {
        public var framework: String
        public var id: String
        public var title: String
    }

    static func soc2(_ id: String, _ title: String) -> Control { .init(framework: "SOC 2", id: id, title: title) }
    static let cc61 = soc2("CC6.1", "Logical access security software and infrastructure")
    static let cc62 = soc2("CC6.2", "User registration and authorization")
    static let cc63 = soc2("CC6.3", "Role-based access, changes and removal")
    static let cc72 = soc2("CC7.2", "Monitoring of system components for anomalies")
    static let cc73 = soc2("CC7.3", "Evaluation of security events")
    static let cc81 = soc2("CC8.1", "Change management")

    /// Per category: (framework, control, title).
    public static let byCategory: [(category: String, controls: [Control])] = [
        ("authentication", [cc61, iso("A.5.17", "Authentication information"), iso("A.8.15", "Logging"), hipaa, pci]),
        ("access", [cc61, cc63, iso("A.5.15", "Access control"), iso("A.5.18", "Access rights"), hipaa, pci]),
        ("credentials", [cc61, iso("A.5.17", "Authentication information"), pci]),
        ("agents", [cc62, cc63, iso("A.5.16", "Identity management"), iso("A.8.15", "Logging")]),
        ("billing", [cc81, iso("A.8.15", "Logging")]),
        ("infrastructure", [cc72, cc81, iso("A.8.16", "Monitoring activities"), pci]),
        ("monitoring", [cc72, cc73, iso("A.8.16", "Monitoring activities"), iso("A.8.17", "Clock synchronization")]),
        ("files", [cc61, iso("A.8.15", "Logging"), hipaa, pci]),
        ("org_settings", [cc62, cc63, cc81, iso("A.5.18", "Access rights"), pci]),
        (
            "privacy",
            [
                cc73, gdpr("Art. 30", "Records of processing activities"),
                gdpr("Art. 33", "Notification of a personal data breach"),
            ]
        ),
    ]

    static func iso(_ id: String, _ title: String) -> Control {
        .init(framework: "ISO/IEC 27001:2022", id: id, title: title)
    }
    static func gdpr(_ id: String, _ title: String) -> Control { .init(framework: "GDPR", id: id, title: title) }
    static let hipaa = Control(framework: "HIPAA", id: "164.312(b)", title: "Audit controls")
    static let pci = Control(
        framework: "PCI DSS v4.0", id: "10.2", title: "Audit logs record user activities and events")

    /// `controls.json`: the statement and, per category, its controls.
    public static var json: [String: Any] {
        [
            "statement": statement,
            "categories": byCategory.map { c in
                [
                    "category": c.category,
                    "controls": c.controls.map { ["framework": $0.framework, "id": $0.id, "title": $0.title] },
                ] as [String: Any]
            },
        ]
    }
}
