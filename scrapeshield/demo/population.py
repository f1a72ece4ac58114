"""A deterministic synthetic population for the demo social network.

Everything here is a function of ``(n, seed)``: the same pair always yields the
same users, follower lists and posts, so a benchmark can replay a scrape and
count exactly which real records left the site. Follower lists and posts are
derived on demand from a per-user seed instead of being stored.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

HONEYPOT_USERNAME = "mira.okafor.archive"
HONEYPOT_USER_ID = 0
MAX_FOLLOWERS = 300

# country: (weight, phone template with one "#" per free digit, cities, name pool)
_COUNTRIES: dict[str, tuple[int, str, tuple[str, ...], str]] = {
    "US": (20, "+1 ### ### ####", ("New York", "Austin", "Chicago", "Seattle"), "en"),
    "GB": (14, "+44 74## ######", ("London", "Manchester", "Leeds", "Glasgow"), "en"),
    "CA": (7, "+1 ### ### ####", ("Toronto", "Vancouver", "Montreal", "Calgary"), "en"),
    "AU": (6, "+61 4## ### ###", ("Sydney", "Melbourne", "Brisbane", "Perth"), "en"),
    "IN": (8, "+91 9#### #####", ("Mumbai", "Bengaluru", "Delhi", "Pune"), "in"),
    "DE": (6, "+49 15## #######", ("Berlin", "Hamburg", "Munich", "Cologne"), "de"),
    "FR": (6, "+33 6 ## ## ## ##", ("Paris", "Lyon", "Marseille", "Lille"), "fr"),
    "BR": (5, "+55 11 9####-####", ("Sao Paulo", "Rio de Janeiro", "Recife"), "pt"),
    "JP": (4, "+81 90 #### ####", ("Tokyo", "Osaka", "Kyoto", "Sapporo"), "ja"),
    "HK": (4, "+852 9### ####", ("Hong Kong", "Kowloon", "Sha Tin"), "zh"),
    "SG": (3, "+65 8### ####", ("Singapore",), "zh"),
    "IE": (3, "+353 8# ### ####", ("Dublin", "Cork", "Galway"), "en"),
    "NZ": (3, "+64 21 ### ####", ("Auckland", "Wellington", "Christchurch"), "en"),
    "ES": (3, "+34 6## ### ###", ("Madrid", "Barcelona", "Valencia"), "es"),
    "MX": (3, "+52 55 #### ####", ("Mexico City", "Guadalajara", "Monterrey"), "es"),
    "NG": (3, "+234 80# ### ####", ("Lagos", "Abuja", "Ibadan"), "ng"),
    "KR": (2, "+82 10 #### ####", ("Seoul", "Busan", "Incheon"), "ko"),
}
_NAMES: dict[str, tuple[str, str]] = {
    "en": ("James Olivia Liam Emma Noah Amelia Jack Chloe Harry Zoë Ethan Grace Oscar Ruby "
           "Lucas Isla Owen Megan Dylan Hannah",
           "Smith Jones Taylor Brown Wilson Evans Walker Wright Thompson Murphy O'Brien Kelly "
           "Campbell Hughes Clarke Patel Nguyen Martin Reid Young"),
    "in": ("Aarav Priya Rohan Ananya Vikram Diya Arjun Kavya Rahul Sneha",
           "Sharma Patel Iyer Reddy Gupta Nair Singh Mehta Rao Das"),
    "de": ("Lukas Lena Jonas Mia Felix Hannah Jürgen Sophie Paul Marie",
           "Müller Schmidt Schneider Fischer Weber Becker Wagner Hoffmann Koch Richter"),
    "fr": ("Louis Camille Hugo Léa Jules Chloé Théo Manon Nathan Inès",
           "Martin Bernard Dubois Durand Lefèvre Moreau Laurent Girard Roux Fournier"),
    "pt": ("João Ana Pedro Beatriz Lucas Mariana Gabriel Júlia Rafael Larissa",
           "Silva Santos Oliveira Souza Lima Pereira Costa Ferreira Almeida Rocha"),
    "es": ("José María Carlos Lucía Diego Sofía Javier Elena Mateo Valeria",
           "García Rodríguez López Martínez Hernández Gómez Díaz Torres Ruiz Flores"),
    "ja": ("Haruto Yui Sota Hina Ren Aoi Yuto Sakura Kaito Mei",
           "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato"),
    "zh": ("Wei Mei Jun Xin Hao Ling Kai Yan Ming Hui",
           "Chan Wong Lee Cheung Lau Ng Tan Lim Chen Ho"),
    "ng": ("Chinedu Amara Tunde Ngozi Emeka Funmi Segun Chioma Ifeanyi Zainab",
           "Okafor Adeyemi Okonkwo Balogun Eze Nwosu Adebayo Obi Ibrahim Okeke"),
    "ko": ("Minjun Seoyeon Jiho Jiwoo Hyun Soojin Dohyun Yuna Taeyang Eunji",
           "Kim Lee Park Choi Jung Kang Cho Yoon Jang Lim"),
}
_ROLES = ("Nurse", "Software engineer", "Teacher", "Student", "Photographer", "Chef",
          "Designer", "Accountant", "Barista", "Architect", "Writer", "Paramedic")
_HOBBIES = ("Coffee first", "Trail running", "Amateur astronomer", "Dog person", "Vinyl collector",
            "Learning the cello", "Football on Sundays", "Plant parent", "Retro games",
            "Sourdough experiments", "Chasing sunsets", "Board game nights")
_POSTS = ("Weekend plans: {hobby} and nothing else.", "Anyone else in {city} see that sky tonight?",
          "New job, same coffee order.", "{hobby}. That's the post.",
          "Finally tried the new place near the station in {city}. Worth it.",
          "Throwback to last summer.", "Reading recommendations welcome!",
          "Rain again in {city}. Of course.", "Small wins: fixed the bike myself.",
          "Grateful for good friends this week.")
_DOMAINS = ("example.com", "example.net", "example.org", "mail.example")
_EPOCH = date(2010, 1, 1).toordinal()
_SPAN_DAYS = date(2024, 12, 31).toordinal() - _EPOCH
_SCRAMBLE = 7_654_321  # coprime to 10: j -> j*A+B is a bijection modulo 10**k


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


@dataclass(frozen=True, slots=True)
class DemoUser:
    """One synthetic member; field order is the export order."""

    id: int
    username: str
    name: str
    bio: str
    city: str
    country: str
    phone: str
    email: str
    photo: str
    created_at: str
    password: str

    def to_record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


HONEYPOT = DemoUser(
    id=HONEYPOT_USER_ID, username=HONEYPOT_USERNAME, name="Mira Okafor",
    bio="Old photos and posts live here now. Main account is private.", city="Lagos",
    country="NG", phone="+234 809 555 0142", email="mira.okafor.archive@example.net",
    photo=f"/static/avatars/{HONEYPOT_USER_ID}.svg", created_at="2014-06-21",
    password="not-a-real-account",
)


class Population:
    """Users ``1..n``; the honeypot (id 0) answers only ``posts_of``/``followers_of``."""

    __slots__ = ("_by_name", "_users", "seed")

    def __init__(self, users: list[DemoUser], seed: int) -> None:
        self._users = users
        self._by_name = {u.username: u for u in users}
        self.seed = seed

    @classmethod
    def generate(cls, n: int = 10_000, seed: int = 1) -> Population:
        if n < 0:
            raise ValueError("n must be >= 0")
        rng = random.Random(seed)
        codes = list(_COUNTRIES)
        weights = [_COUNTRIES[c][0] for c in codes]
        pools = {k: ([(f, _ascii(f)) for f in first.split()], [(s, _ascii(s)) for s in last.split()])
                 for k, (first, last) in _NAMES.items()}
        # One numbering space per phone template (US and CA share "+1"); the j-th number
        # drawn from a space is a bijection of j, so numbers never repeat.
        spaces = {t for _, t, _, _ in _COUNTRIES.values()}
        offsets = {t: rng.randrange(10 ** t.count("#")) for t in sorted(spaces)}
        drawn = dict.fromkeys(spaces, 0)
        taken: set[str] = set()
        users: list[DemoUser] = []
        for uid, country in enumerate(rng.choices(codes, weights, k=n), start=1):
            _, template, cities, pool = _COUNTRIES[country]
            if rng.random() < 0.15:
                pool = rng.choice(list(_NAMES))
            firsts, lasts = pools[pool]
            first, fa = rng.choice(firsts)
            last, la = rng.choice(lasts)
            username = _username(rng, fa, la)
            while username in taken:
                username = f"{fa}.{la}{rng.randrange(10, 100_000)}"
            taken.add(username)
            j = drawn[template]
            drawn[template] = j + 1
            width = template.count("#")
            digits = f"{(j * _SCRAMBLE + offsets[template]) % 10 ** width:0{width}d}"
            city = rng.choice(cities)
            users.append(DemoUser(
                id=uid, username=username, name=f"{first} {last}",
                bio=f"{rng.choice(_ROLES)} in {city}. {rng.choice(_HOBBIES)}.",
                city=city, country=country, phone=template.replace("#", "{}").format(*digits),
                email=f"{username}@{rng.choice(_DOMAINS)}", photo=f"/static/avatars/{uid}.svg",
                created_at=date.fromordinal(_EPOCH + rng.randrange(_SPAN_DAYS)).isoformat(),
                password=f"demo-{rng.getrandbits(48):012x}",
            ))
        return cls(users, seed)

    def __len__(self) -> int:
        return len(self._users)

    def __iter__(self) -> Iterator[DemoUser]:
        return iter(self._users)

    def by_id(self, user_id: int) -> DemoUser | None:
        return self._users[user_id - 1] if 1 <= user_id <= len(self._users) else None

    def by_username(self, username: str) -> DemoUser | None:
        return self._by_name.get(username)

    def _member(self, user_id: int) -> DemoUser | None:
        return HONEYPOT if user_id == HONEYPOT_USER_ID else self.by_id(user_id)

    def _rng(self, kind: str, user_id: int) -> random.Random:
        return random.Random(f"{self.seed}:{kind}:{user_id}")

    def followers_count(self, user_id: int) -> int:
        return self._follower_size(self._rng("followers", user_id), user_id)

    def _follower_size(self, rng: random.Random, user_id: int) -> int:
        if self._member(user_id) is None:
            return 0
        others = len(self._users) - (user_id != HONEYPOT_USER_ID)
        return min(int(MAX_FOLLOWERS * rng.random() ** 3), others)

    def followers_of(self, user_id: int) -> list[int]:
        """Ids of the user's followers; heavy-tailed sizes from 0 to ``MAX_FOLLOWERS``."""
        rng = self._rng("followers", user_id)
        size = self._follower_size(rng, user_id)
        if size == 0:
            return []
        picked = rng.sample(range(1, len(self._users) + 1), min(size + 1, len(self._users)))
        return [i for i in picked if i != user_id][:size]

    def posts_of(self, user_id: int) -> list[str]:
        user = self._member(user_id)
        if user is None:
            return []
        rng = self._rng("posts", user_id)
        hobby = user.bio.rsplit(". ", 1)[-1].rstrip(".")
        chosen = rng.sample(_POSTS, rng.randint(2, 5))
        return [p.format(city=user.city, hobby=hobby) for p in chosen]

    def search(self, q: str, limit: int = 20, after: int = 0) -> list[DemoUser]:
        """Users with id > ``after`` whose username or name contains ``q`` (any case)."""
        needle = q.casefold()
        found: list[DemoUser] = []
        if not needle or limit <= 0:
            return found
        for user in self._users[max(after, 0):]:
            if needle in user.username or needle in user.name.casefold():
                found.append(user)
                if len(found) >= limit:
                    break
        return found


def _username(rng: random.Random, first: str, last: str) -> str:
    style = rng.randrange(5)
    if style == 0:
        return f"{first}.{last}"
    if style == 1:
        return f"{first}.{last}{rng.randrange(1, 100)}"
    if style == 2:
        return f"{first}_{last}{rng.randrange(70, 100)}"
    if style == 3:
        return f"{first[0]}{last}{rng.randrange(1, 1000)}"
    return f"{first}{last}"


def export_dataset(population: Population, path: Path | str) -> int:
    """Write the ground truth as JSON lines (one user per line); returns the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for user in population:
            out.write(json.dumps(user.to_record(), ensure_ascii=False) + "\n")
            count += 1
    return count
