"""podinit: a static init for every container, injected by a mutating admission webhook."""

__version__ = "0.1.0"
