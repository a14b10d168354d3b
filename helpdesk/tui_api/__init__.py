"""What the TUI calls: one method per user action, on top of the service API
and training, answering plain data (views) that cross to the app's process."""
