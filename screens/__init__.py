"""The Textual app of the helpdesk: screens, widgets and their .tcss.

Everything here talks to the core through ``helpdesk.tui_api.backend`` (which calls
``helpdesk.service.api`` and the engine) and holds no business rule. ``helpdesk`` runs that
backend in a process of its own (``screens.remote``): the screens hold only plain data
(``helpdesk.tui_api.views``, ``helpdesk.storage.filters``) and never import the database layer. Importing
this package imports nothing heavy: ``screens.start`` is loaded by ``helpdesk`` /
``helpdesk demo`` only.
"""

#: Allocations between two young garbage collections in the app's and the backend's
#: processes (Python's default: 700; see ``HelpdeskApp._tune_collector``).
GC_YOUNG = 10_000
