"""Write the sample legal reports in docs/samples/ from the scenario the tests run.

    .venv/bin/python scripts/legal_samples.py

An evidence pack (and its report as HTML and PDF), a breach assessment against the demo's own
synthetic users (their ``country`` field) with its draft notices, and a compliance report.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from legal_scenario import CAMPAIGN, START, Scenario  # noqa: E402

from scrapeshield.db.store import Database  # noqa: E402
from scrapeshield.demo.population import Population, export_dataset  # noqa: E402
from scrapeshield.legal import keys  # noqa: E402
from scrapeshield.legal.assessment_report import write_assessment  # noqa: E402
from scrapeshield.legal.breach import DataMap, Incident, assess  # noqa: E402
from scrapeshield.legal.evidence import export_pack  # noqa: E402
from scrapeshield.legal.incident import incident_from_campaign  # noqa: E402
from scrapeshield.legal.incidents import save_incident  # noqa: E402
from scrapeshield.legal.report import build_report, write_report  # noqa: E402
from scrapeshield.legal.rules import Rules  # noqa: E402
from scrapeshield.legal.subjects import Subjects  # noqa: E402

OUT = ROOT / "docs" / "samples"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        s = Scenario(Database(f"sqlite:///{tmp / 'db.sqlite'}"), tmp)
        s.run()
        pack = OUT / "evidence-pack.zip"
        export_pack(s.db, CAMPAIGN, pack, s.key, policy=s.policy, clock=s.clock)
        (OUT / "evidence-public-key.pem").write_text(keys.public_pem(s.key))
        with zipfile.ZipFile(pack) as archive:
            (OUT / "evidence-report.html").write_bytes(archive.read("report.html"))
            (OUT / "evidence-report.pdf").write_bytes(archive.read("report.pdf"))
        users = tmp / "users.jsonl"
        export_dataset(Population.generate(2000, seed=1), users)
        aware = s.clock.now() + 3600
        result = assess(incident_from_campaign(s.db, CAMPAIGN), Subjects.load(users), Rules.load(), aware,
                        data_map=DataMap.from_policy(s.policy))
        save_incident(s.db, result, "dpo", aware)
        out = tmp / "assessment"
        write_assessment(result, out)
        for name in ("assessment.html", "assessment.pdf"):
            shutil.copy(out / name, OUT / f"breach-{name}")
        notices = sorted((out / "notices").iterdir())
        (OUT / "breach-notices.txt").write_text("\n\n".join(p.read_text() for p in notices))
        # An illustration at scale: 12,000 profiles taken through the JSON API before the shield
        # was in front of the site (the kind of incident a replay of old logs finds).
        big_users = tmp / "big-users.jsonl"
        export_dataset(Population.generate(12_000, seed=1), big_users)
        population = Subjects.load(big_users)
        taken = {f"user:{n}": frozenset({"profile-api"}) for n in range(1, 12_001)}
        big = Incident("inc-before-shield", "12,000 profiles taken before the shield was deployed",
                       START - 30 * 86400, START - 29 * 86400, taken, source="illustration")
        big_result = assess(big, population, Rules.load(), START, data_map=DataMap.from_policy(s.policy))
        write_assessment(big_result, tmp / "big")
        for name in ("assessment.html", "assessment.pdf"):
            shutil.copy(tmp / "big" / name, OUT / f"breach-large-{name}")
        facts = build_report(s.db, START - 86400, START + 86400, policy=s.policy)
        write_report(facts, OUT / "compliance-report")
        s.db.close()
    for path in sorted(OUT.iterdir()):
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
