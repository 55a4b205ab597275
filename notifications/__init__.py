"""Notifications: who hears about what, by email and in their organisation's chat channels.

The floors above (delegations) call `notifications.services.notify` inside the transaction of
the change; a delivery row per recipient x channel is written there (the notification outbox)
and the Celery worker sends it after the commit. This package knows people and organisations
(`accounts`) and nothing of delegations.
"""
