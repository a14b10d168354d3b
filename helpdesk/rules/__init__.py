"""Rules: the named guards and effects that packs refer to, what they see (the
context), who may act, the one gate for sensitive reads, the sanctions ledger and one-time
tokens."""
