"""What Suivi's services share: the event contract, bus and database plumbing, settings, telemetry.

`shared` never imports a service; services never import each other.
"""
