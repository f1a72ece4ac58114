"""scrapeshield: protects personal data on social platforms from mass scraping."""

from scrapeshield import _native

# Before any module of the request path is imported: its compiled build, if current (see _native).
_native.activate()
