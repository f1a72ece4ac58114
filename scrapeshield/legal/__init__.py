"""Legal: the evidence ledger (C7), breach assessment (C8) and the compliance report (C11).

Functions for the console and other callers (all return plain data; times are epoch seconds):

Evidence (``scrapeshield.legal.evidence``)::

    export_pack(db: Database, campaign_id: str, out_path: Path | str, signing_key: Ed25519PrivateKey,
                *, policy: CompiledPolicy | None = None, clock: Clock | None = None,
                terms_path: Path | None = None, robots_path: Path | None = None,
                actor: str | None = "cli", policy_dir: Path | None = None) -> dict
        # writes the zip; returns {"path", "campaign", "entries", "first_seq", "last_seq",
        #  "head_hash", "key_id", "manifest_sha256", "files": {name: sha256}}; raises LegalError
        #  (unknown campaign). Audited as "evidence.export" by actor (None: the caller audits).
    verify_pack(path: Path | str, public_key: Ed25519PublicKey | None = None) -> VerifyResult
        # VerifyResult.ok: bool, .problems: list[str] (each names the file / ledger seq),
        # .key_id, .campaign, .entries; .to_dict()
    keys.load_or_create(data_dir) -> Ed25519PrivateKey      # the platform's key (0600 file)
    keys.public_pem(key) -> str; keys.load_public(pem) -> Ed25519PublicKey

Breach assessment (``scrapeshield.legal.breach``, ``.incident``, ``.rules``, ``.subjects``)::

    Rules.load(path: Path | None = None) -> Rules            # None: the packaged rules file
    Subjects.load(path, residence_field="country") -> Subjects  # JSON-lines user file
    incident_from_campaign(db, campaign_id) -> Incident
    incident_from_range(db, start: float, end: float) -> Incident
    Incident(id, title, start, end, taken: Mapping[record, frozenset[route]], source="")
    assess(incident, subjects, rules, aware_at: float, *, data_map: DataMap | None = None)
        -> Assessment   # .to_dict(): subjects, categories, residence, jurisdictions[...]
                        # with authority/individuals {status, test, reasoning, deadline}, notices
    DataMap.from_policy(policy: CompiledPolicy | None) -> DataMap  # route → data categories
    assessment_report.write_assessment(assessment, out_dir: Path) -> list[Path]
        # assessment.json/.html/.pdf and notices/<jurisdiction>-<audience>.txt

Incidents on record (``scrapeshield.legal.incidents``)::

    save_incident(db, assessment, created_by: str, now: float) -> str      # incident id
    list_incidents(db, now: float, limit: int = 100) -> list[dict]   # newest first, with
        # "next_deadline" (epoch or None), "seconds_left" for the countdown, and "deadlines":
        # [{jurisdiction, audience, status, deadline, target, seconds_left}]
    get_incident(db, incident_id: str, now: float) -> dict | None    # includes "assessment"

Compliance report (``scrapeshield.legal.report``)::

    build_report(db, start: float, end: float, *, rules: Rules | None = None,
                 policy: CompiledPolicy | None = None) -> dict   # the figures
    write_report(facts: dict, out: Path) -> list[Path]   # out.html and out.pdf
"""
