"""The Textual app of the helpdesk: screens, widgets and their .tcss.

Everything here talks to the core through ``screens.backend`` (which calls
``helpdesk.service`` and the engine) and holds no business rule. Importing this package
imports nothing heavy: ``screens.app`` is loaded by ``helpdesk`` / ``helpdesk demo`` only.
"""
