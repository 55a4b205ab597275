from allauth.account.adapter import DefaultAccountAdapter


class PortalAccountAdapter(DefaultAccountAdapter):
    """allauth's hooks into the portal (sign-up of organisations, audit of sign-ins)."""
