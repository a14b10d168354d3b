"""The Textual app of the helpdesk: screens, widgets and their .tcss.

Everything here talks to the core through ``helpdesk.tui_api.backend`` (which calls
``helpdesk.service.api`` and the engine) and holds no business rule. The screens call it
from thread workers, never from the event loop, and hold only the plain data it answers
(``helpdesk.tui_api.views``, ``helpdesk.storage.filters``); they never import the database
layer themselves. Importing this package imports nothing heavy: ``screens.start`` is
loaded by ``helpdesk`` / ``helpdesk demo`` only.
"""

#: Allocations between two young garbage collections in the app's process (Python's
#: default: 700; see ``HelpdeskApp._tune_collector``).
GC_YOUNG = 10_000
