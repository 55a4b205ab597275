"""The inbox: what waits for *this* person, each item linking to the page that acts on it.
Shown at the top of the Overview, counted in the navigation (`context_processors.inbox`)."""
