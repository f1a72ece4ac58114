"""decoy: plausible fake records, each carrying a canary that names the client that got it.

Every personal field of a record route's response is replaced with a fake value. The
fakes are derived by HMAC from the client's pseudonym and the record, so one client
reading one record twice sees the same fake person (a scraper comparing two reads finds
nothing odd), while two clients see two different ones. The e-mail and the phone number
are the canaries: unique to (client, record), remembered with the client, fingerprint and
time (``canaries.CanaryLog``), so that scraped data found later leads back to who took it
(``scrapeshield canary lookup VALUE``). They use reserved example domains and numbers
that reach no real person.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from html import escape

_FIRST = ("Alex Robin Sam Jamie Morgan Casey Jordan Taylor Riley Avery Quinn Rowan Sasha Noa "
          "Elena Marco Ines Tomas Yara Leo Mila Iris Hugo Nora Aron Lina Emil Vera Otto Ada").split()
_LAST = ("Hale Berg Costa Novak Lind Moreau Ortega Sato Keller Varga Duarte Holm Petrov Rossi "
         "Brandt Navarro Okoye Lehmann Farrell Quint Adler Marsh Kovac Sorensen Vidal Young").split()
_PLACES = (("Porto", "PT"), ("Ghent", "BE"), ("Tampere", "FI"), ("Leeds", "GB"), ("Graz", "AT"),
           ("Halifax", "CA"), ("Perth", "AU"), ("Denver", "US"), ("Lyon", "FR"), ("Bremen", "DE"),
           ("Cork", "IE"), ("Dunedin", "NZ"))
_ROLES = ("Sound engineer", "Librarian", "Nurse", "Carpenter", "Data analyst", "Baker", "Pilot",
          "Translator", "Gardener", "Physio", "Illustrator", "Teacher")
_LIKES = ("Sea swimming", "Film cameras", "Crosswords", "Houseplants", "Long walks", "Jazz records",
          "Cycling", "Board games", "Pottery", "Birdwatching", "Hiking", "Baking bread")
# Reserved for documentation and examples (RFC 2606): mail to them reaches nobody.
_DOMAINS = ("mail.example", "inbox.example", "post.example", "example.net")


@dataclass(frozen=True, slots=True)
class FakeRecord:
    name: str
    bio: str
    city: str
    country: str
    email: str  # canary
    phone: str  # canary
    photo: str

    def value(self, field: str, old: str) -> str:
        """The fake for a field (by its usual names); unknown fields are blanked."""
        lowered = field.lower()
        if lowered in ("location", "place"):
            return f"{self.city}, {self.country}"
        if lowered in ("city", "country", "name", "bio", "email", "phone", "photo"):
            return str(getattr(self, lowered))
        if "mail" in lowered:
            return self.email
        if "phone" in lowered or "mobile" in lowered:
            return self.phone
        return ""


class DecoyMaker:
    """Fake records keyed by a secret: nobody without it can tell which client got which."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def record(self, client: str, record: str) -> FakeRecord:
        digest = hmac.new(self._key, f"{client}\x1f{record}".encode(), hashlib.sha256).digest()
        n = int.from_bytes(digest, "big")
        first = _FIRST[n % len(_FIRST)]
        last = _LAST[(n >> 8) % len(_LAST)]
        city, country = _PLACES[(n >> 16) % len(_PLACES)]
        role, like = _ROLES[(n >> 24) % len(_ROLES)], _LIKES[(n >> 32) % len(_LIKES)]
        code = base64.b32encode(digest[8:13]).decode().lower()  # 40 bits: unique in practice
        domain = _DOMAINS[(n >> 40) % len(_DOMAINS)]
        digits = f"{int.from_bytes(digest[13:18], 'big') % 10**7:07d}"
        area = 201 + int.from_bytes(digest[18:20], "big") % 788
        initials = escape(first[0] + last[0])
        photo = ("data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='96' "
                 f"height='96'><rect width='96' height='96' rx='48' fill='%23{digest[20:23].hex()}'/>"
                 f"<text x='48' y='60' font-size='36' fill='%23fff' text-anchor='middle'>{initials}"
                 "</text></svg>")
        return FakeRecord(
            name=f"{first} {last}",
            bio=f"{role} in {city}. {like}.",
            city=city,
            country=country,
            email=f"{first.lower()}.{last.lower()}.{code}@{domain}",
            phone=f"+1 {area} {digits[:3]} {digits[3:]}",
            photo=photo,
        )


def normalise_canary(value: str) -> str:
    """How canaries are stored and looked up: e-mails lower-case, phones digits only."""
    text = value.strip()
    if "@" in text:
        return text.lower()
    digits = "".join(c for c in text if c.isdigit())
    return "+" + digits if digits else text
