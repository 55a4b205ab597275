from django.apps import AppConfig


class DelegationsConfig(AppConfig):
    name = "delegations"
    verbose_name = "Delegations"

    def ready(self) -> None:
        # why: the receivers and the worker's modules import the models, which Django loads
        # only after every app config.
        from delegations import startup

        startup.connect_receivers()
