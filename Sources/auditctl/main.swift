print("auditctl")
