"""The service API that the CLI and the TUI both call: plain data in and out."""
