"""Plain-text tables of a simulated day."""

from __future__ import annotations

from scrapeshield.simulate.replay import START
from scrapeshield.simulate.results import Result

ACTIONS = ("allow", "throttle", "challenge", "block", "tarpit", "degrade", "decoy")


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths,
                                                                                          strict=True)))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(out)


def persona_table(result: Result) -> str:
    header = ["persona", "side", "requests", *ACTIONS, "real profiles", "sessions", "blocked", "challenged"]
    rows = []
    for t in result.tallies:
        d = t.as_dict()
        person = t.side == "person"
        rows.append([
            t.name, t.side, f"{t.requests:,}", *(f"{t.actions.get(a, 0):,}" for a in ACTIONS),
            f"{len(t.profiles):,}", f"{len(t.sessions):,}" if person else "-",
            f"{d['blocked_share']:.2%}" if person else "-",
            f"{d['challenged_share']:.2%}" if person else "-",
        ])
    return table(rows, header)


def campaign_table(result: Result) -> str:
    rows = [
        [c["id"], c["kind"], f"{c['clients']:,}", f"{c['records']:,}", f"{c['score']:.0f}",
         ", ".join(f"{k} ({v})" for k, v in c["personas"].items())]
        for c in result.campaigns
    ]
    return table(rows, ["campaign", "kind", "clients", "records", "score", "personas (requests)"])


def render(result: Result) -> str:
    head = (f"simulated day: {result.users:,} users, seed {result.seed}, protection {result.level}, "
            f"{result.decisions:,} requests")
    parts = [head, "", persona_table(result)]
    if result.campaigns:
        parts += ["", "campaigns found by grouping (score >= 20):", campaign_table(result)]
    if result.acted:
        parts += ["", "the analyst acted on:"]
        parts += [f"  {a['campaign']} ({a['clients']:,} clients, score {a['score']:.0f}): {a['action']} "
                  f"from hour {int((a['at'] - START) // 3600)}" for a in result.acted]
    return "\n".join(parts)
