"""Benchmarks: scripts that measure the stack (not tests; nothing here runs in the gate)."""
