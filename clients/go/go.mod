module example.com/auditlog/clients/go

go 1.19
