"""Policy: the providers' packs (parameters, citations, features) and their
operational settings."""
