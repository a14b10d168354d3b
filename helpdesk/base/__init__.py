"""Basic types every layer uses: the clock, calendar rules, errors, roles,
untrusted text, translations, networks, ticket fields and data paths."""
