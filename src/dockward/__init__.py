"""dockward: make a Docker host secure and keep it so."""

__version__ = "0.1.0"
