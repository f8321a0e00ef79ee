"""Typed configuration: the installation settings and the tenants (municipality lines)."""

from voicebot.config.errors import ConfigError
from voicebot.config.settings import Installation, Settings, load_installation
from voicebot.config.tenant import Tenant

__all__ = ["ConfigError", "Installation", "Settings", "Tenant", "load_installation"]
