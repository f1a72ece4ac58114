"""C4 campaigns: clients that share a trait, grouped, scored, stored and acted on as one.

``grouping`` turns events into campaigns, ``store`` reads and writes them, ``act`` puts a
whole campaign on the block/challenge lists, ``job`` runs the grouping on ``shield.jobs``.
"""
