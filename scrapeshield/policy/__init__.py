"""Policy: schema (what may be written) → compiled runtime form (what the engine reads)."""
