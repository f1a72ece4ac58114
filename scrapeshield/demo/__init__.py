"""The demo social network that ``scrapeshield demo`` serves behind the shield."""

from scrapeshield.demo.app import create_demo_app
from scrapeshield.demo.population import (
    HONEYPOT_USER_ID,
    HONEYPOT_USERNAME,
    DemoUser,
    Population,
    export_dataset,
)

__all__ = [
    "HONEYPOT_USERNAME",
    "HONEYPOT_USER_ID",
    "DemoUser",
    "Population",
    "create_demo_app",
    "export_dataset",
]
