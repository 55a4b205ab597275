"""pap: the Partner Access Portal's command-line credential helper."""

__version__ = "0.1.0"
