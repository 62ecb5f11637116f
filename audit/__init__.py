"""Driftledger's signed, hash-chained, append-only event store (knows nothing about ML)."""
