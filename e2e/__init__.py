"""End-to-end harness, shared by tests/, bench/ and demo/: tool builds (tools.sh) and
discovery (tools), certificates (pki), managed processes (processes), a real control
plane (controlplane) and its audit log (audit), webhook configurations (webhookconfig),
a test webhook (testwebhook) and runc-run pods (runtime)."""
